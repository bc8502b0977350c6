// A small secrets-engine plugin built on HashiCorp's go-plugin library, used by
// crates/coffer/tests/go_plugin.rs to run Coffer's plugin host against the reference
// implementation of the plugin protocol (handshake, automatic mTLS, broker, controller).
//
// The gRPC stubs come from Coffer's own protocol definitions (crates/plugin/proto), compiled
// with protoc and protoc-gen-go at test time into the packages `coffergop/pb` and
// `coffergop/logical`.
//
// Paths (relative to the mount):
//
//	kv/<name>  create/update stores the request data as JSON, read returns it, delete removes it
//	kv/        list names
//	info       read: the process id, the go-plugin version this was built with, what the
//	           host's SystemView says (default lease TTL, plugin environment)
//
// Everything is kept in the storage the host serves through the broker; the process has no
// state of its own, so a restarted process sees what the killed one wrote.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"coffergop/logical"
	"coffergop/pb"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// The go-plugin release this file is built against (Debian's golang-github-hashicorp-go-plugin-dev).
const goPluginVersion = "1.0.1"

// The plugin's own version, answered by the PluginVersion service.
const pluginVersion = "v0.1.0-go"

// Error types of the protocol's ProtoError (see crates/plugin/proto/backend.proto).
const (
	errUser                 = 1
	errUnsupportedOperation = 5
	errUnsupportedPath      = 6
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  5,
	MagicCookieKey:   "VAULT_BACKEND_PLUGIN",
	MagicCookieValue: "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
}

const helpText = `A key/value store written in Go on HashiCorp's go-plugin library.

kv/<name>  write JSON data, read it back, delete it; list kv/ for the names.
info       the plugin process, its library version and what the host told it.`

// backendPlugin is the go-plugin Plugin that registers the Backend and PluginVersion
// services on the gRPC server go-plugin runs (after its handshake and automatic mTLS).
type backendPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (backendPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	b := &backend{broker: broker}
	pb.RegisterBackendServer(s, b)
	logical.RegisterPluginVersionServer(s, versionServer{})
	return nil
}

func (backendPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("this binary is a plugin, not a host")
}

type versionServer struct{}

func (versionServer) Version(context.Context, *logical.Empty) (*logical.VersionReply, error) {
	return &logical.VersionReply{PluginVersion: pluginVersion}, nil
}

type backend struct {
	broker *plugin.GRPCBroker

	mu      sync.RWMutex
	storage pb.StorageClient
	system  pb.SystemViewClient
}

// fixBrokerTLS makes go-plugin 1.0.1's broker able to dial the host under automatic mTLS.
//
// In go-plugin before 1.4.4 the broker dials the host's brokered services with the plugin's
// *server* TLS configuration: it has no RootCAs (so the host's certificate is checked against
// the system's CAs) and no ServerName (so the name checked is gRPC's dial target, "unused").
// No host certificate can pass that check, so `broker.Dial` under AutoMTLS always fails with
// "x509: certificate signed by unknown authority". go-plugin 1.4.4 fixed it by trusting the
// host's certificate (the one from PLUGIN_CLIENT_CERT, already in ClientCAs) as a root and
// checking the name "localhost". This does the same to the broker's configuration, which
// go-plugin keeps in an unexported field. Set COFFER_GOP_NO_BROKER_FIX=1 to see the
// library's own behaviour.
func fixBrokerTLS(broker *plugin.GRPCBroker) error {
	if os.Getenv("COFFER_GOP_NO_BROKER_FIX") == "1" {
		return nil
	}
	f := reflect.ValueOf(broker).Elem().FieldByName("tls")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*tls.Config)(nil)) {
		return fmt.Errorf("go-plugin's GRPCBroker has no tls field: not release %s", goPluginVersion)
	}
	cfg := *(**tls.Config)(unsafe.Pointer(f.UnsafeAddr()))
	if cfg == nil {
		return fmt.Errorf("the broker has no TLS configuration: the host did not ask for automatic mTLS")
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = cfg.ClientCAs
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	return nil
}

func (b *backend) Setup(ctx context.Context, args *pb.SetupArgs) (*pb.SetupReply, error) {
	if err := fixBrokerTLS(b.broker); err != nil {
		return &pb.SetupReply{Err: err.Error()}, nil
	}
	conn, err := b.broker.Dial(args.BrokerId)
	if err != nil {
		return &pb.SetupReply{Err: fmt.Sprintf("dialling the host's storage (broker id %d): %v", args.BrokerId, err)}, nil
	}
	b.mu.Lock()
	b.storage = pb.NewStorageClient(conn)
	b.system = pb.NewSystemViewClient(conn)
	b.mu.Unlock()
	return &pb.SetupReply{}, nil
}

func (b *backend) clients() (pb.StorageClient, pb.SystemViewClient) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.storage, b.system
}

func (b *backend) Initialize(context.Context, *pb.InitializeArgs) (*pb.InitializeReply, error) {
	return &pb.InitializeReply{}, nil
}

func (b *backend) Type(context.Context, *pb.Empty) (*pb.TypeReply, error) {
	return &pb.TypeReply{Type: 1}, nil
}

func (b *backend) SpecialPaths(context.Context, *pb.Empty) (*pb.SpecialPathsReply, error) {
	return &pb.SpecialPathsReply{Paths: &pb.Paths{}}, nil
}

func (b *backend) Cleanup(context.Context, *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, nil
}

func (b *backend) InvalidateKey(context.Context, *pb.InvalidateKeyArgs) (*pb.Empty, error) {
	return &pb.Empty{}, nil
}

func protoErr(kind uint32, format string, args ...interface{}) *pb.HandleRequestReply {
	return &pb.HandleRequestReply{Err: &pb.ProtoError{ErrType: kind, ErrMsg: fmt.Sprintf(format, args...)}}
}

func dataReply(data interface{}) (*pb.HandleRequestReply, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return &pb.HandleRequestReply{Response: &pb.Response{Data: string(raw)}}, nil
}

// kvName is the entry name of a `kv/<name>` path ("" for the list path `kv/`).
func kvName(path string) (string, bool) {
	if !strings.HasPrefix(path, "kv/") {
		return "", false
	}
	name := strings.TrimPrefix(path, "kv/")
	if strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

func (b *backend) HandleExistenceCheck(ctx context.Context, args *pb.HandleExistenceCheckArgs) (*pb.HandleExistenceCheckReply, error) {
	name, ok := kvName(args.GetRequest().GetPath())
	if !ok || name == "" {
		return &pb.HandleExistenceCheckReply{}, nil
	}
	storage, _ := b.clients()
	if storage == nil {
		return &pb.HandleExistenceCheckReply{Err: &pb.ProtoError{ErrType: errUser, ErrMsg: "Setup has not run"}}, nil
	}
	r, err := storage.Get(ctx, &pb.StorageGetArgs{Key: "kv/" + name})
	if err != nil {
		return nil, err
	}
	if r.Err != "" {
		return &pb.HandleExistenceCheckReply{Err: &pb.ProtoError{ErrType: errUser, ErrMsg: r.Err}}, nil
	}
	return &pb.HandleExistenceCheckReply{CheckFound: true, Exists: r.Entry != nil}, nil
}

func (b *backend) HandleRequest(ctx context.Context, args *pb.HandleRequestArgs) (*pb.HandleRequestReply, error) {
	req := args.GetRequest()
	op, path := req.GetOperation(), req.GetPath()
	switch op {
	case "help":
		return dataReply(map[string]interface{}{"help": helpText, "see_also": []string{}})
	case "rollback", "renew", "revoke":
		return &pb.HandleRequestReply{}, nil
	}
	storage, system := b.clients()
	if storage == nil {
		return protoErr(errUser, "Setup has not run: no storage"), nil
	}
	if path == "info" {
		if op != "read" {
			return protoErr(errUnsupportedOperation, "unsupported operation %q on info", op), nil
		}
		ttl, err := system.DefaultLeaseTTL(ctx, &pb.Empty{})
		if err != nil {
			return nil, err
		}
		env, err := system.PluginEnv(ctx, &pb.Empty{})
		if err != nil {
			return nil, err
		}
		return dataReply(map[string]interface{}{
			"pid":                       os.Getpid(),
			"go_plugin_version":         goPluginVersion,
			"default_lease_ttl_seconds": ttl.Ttl / 1e9, // the protocol carries nanoseconds
			"host_version":              env.GetPluginEnvironment().GetVaultVersion(),
			"mount_point":               req.GetMountPoint(),
		})
	}
	name, ok := kvName(path)
	if !ok {
		return protoErr(errUnsupportedPath, "unsupported path %q", path), nil
	}
	key := "kv/" + name
	switch {
	case op == "list" && name == "":
		r, err := storage.List(ctx, &pb.StorageListArgs{Prefix: "kv/"})
		if err != nil {
			return nil, err
		}
		if r.Err != "" {
			return protoErr(errUser, "%s", r.Err), nil
		}
		keys := append([]string{}, r.Keys...)
		sort.Strings(keys)
		return dataReply(map[string]interface{}{"keys": keys})
	case name == "":
		return protoErr(errUnsupportedOperation, "unsupported operation %q on kv/", op), nil
	case op == "read":
		r, err := storage.Get(ctx, &pb.StorageGetArgs{Key: key})
		if err != nil {
			return nil, err
		}
		if r.Err != "" {
			return protoErr(errUser, "%s", r.Err), nil
		}
		if r.Entry == nil {
			return &pb.HandleRequestReply{}, nil
		}
		return &pb.HandleRequestReply{Response: &pb.Response{Data: string(r.Entry.Value)}}, nil
	case op == "create" || op == "update":
		data := req.GetData()
		if data == "" {
			data = "{}"
		}
		var check map[string]interface{}
		if err := json.Unmarshal([]byte(data), &check); err != nil {
			return protoErr(errUser, "request data is not a JSON object: %v", err), nil
		}
		r, err := storage.Put(ctx, &pb.StoragePutArgs{Entry: &pb.StorageEntry{Key: key, Value: []byte(data)}})
		if err != nil {
			return nil, err
		}
		if r.Err != "" {
			return protoErr(errUser, "%s", r.Err), nil
		}
		return &pb.HandleRequestReply{}, nil
	case op == "delete":
		r, err := storage.Delete(ctx, &pb.StorageDeleteArgs{Key: key})
		if err != nil {
			return nil, err
		}
		if r.Err != "" {
			return protoErr(errUser, "%s", r.Err), nil
		}
		return &pb.HandleRequestReply{}, nil
	}
	return protoErr(errUnsupportedOperation, "unsupported operation %q on %s", op, path), nil
}

func main() {
	// go-plugin checks the magic cookie and explains itself to a person who runs the binary.
	// It does not notice a host that dies without stopping it (SIGKILL): exit then, rather than
	// linger holding whatever the host's process passed down.
	go func() {
		parent := os.Getppid()
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				os.Exit(0)
			}
		}
	}()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{"backend": backendPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
