# Builds the PKI of the cert auth tests in the current directory with openssl: a server
# certificate for the TLS listener, a root CA, an intermediate CA it signs, leaf client
# certificates from the intermediate (alice, bob — revoked by the CRL —, carol in another OU, old —
# expired —, srv — serverAuth only —) and a self-signed stranger. Leaves carry extension
# 1.2.3.4.5 = UTF8String "team-<name>".
set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# Server certificate for the listener.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost -addext basicConstraints=critical,CA:false \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout server.key -out server.pem 2>/dev/null
# Root CA and an intermediate it signs.
key root.key
openssl req -x509 -new -key root.key -days 3 -subj "/CN=Coffer Test Root" -out root.pem \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
key inter.key
openssl req -new -key inter.key -subj "/CN=Coffer Test Intermediate" -out inter.csr
printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > inter.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3 -extfile inter.ext -out inter.pem 2>/dev/null
# The intermediate's CA database: signs the leaves, revokes one, issues the CRL.
mkdir -p newcerts && : > index.txt && echo 1000 > serial && echo 1000 > crlnumber
cat > ca.cnf <<CNF
[ca]
default_ca = d
[d]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
crlnumber = crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = p
unique_subject = no
[p]
commonName = supplied
organizationalUnitName = optional
CNF
leaf() { # name subject san [startdate enddate]
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=%s\n1.2.3.4.5=ASN1:UTF8String:%s\n' "$3" "team-$1" > "$1.ext"
  if [ -n "$4" ]; then dates="-startdate $4 -enddate $5"; else dates=""; fi
  openssl ca -batch -config ca.cnf -cert inter.pem -keyfile inter.key -in "$1.csr" -out "$1.pem" -extfile "$1.ext" -notext $dates 2>/dev/null
  cat "$1.pem" inter.pem > "$1-chain.pem"
}
leaf alice "/OU=payments/CN=alice" "DNS:alice.example.com,email:alice@example.com,URI:spiffe://example/alice"
leaf bob "/OU=payments/CN=bob" "DNS:bob.example.com"
leaf carol "/OU=sales/CN=carol" "DNS:carol.example.com"
leaf old "/OU=payments/CN=old" "DNS:old.example.com" 20200101000000Z 20200201000000Z
# A leaf with a server-only key usage, and a self-signed stranger.
key srv.key; openssl req -new -key srv.key -subj "/CN=srv" -out srv.csr
printf 'extendedKeyUsage=serverAuth\n' > srv.ext
openssl ca -batch -config ca.cnf -cert inter.pem -keyfile inter.key -in srv.csr -out srv.pem -extfile srv.ext -notext 2>/dev/null
cat srv.pem inter.pem > srv-chain.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=stranger -keyout stranger.key -out stranger.pem 2>/dev/null
openssl ca -batch -config ca.cnf -cert inter.pem -keyfile inter.key -revoke bob.pem 2>/dev/null
openssl ca -batch -config ca.cnf -cert inter.pem -keyfile inter.key -gencrl -out inter.crl.pem 2>/dev/null
