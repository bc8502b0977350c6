"""A tiny authoritative DNS server for tests/pki_acme.rs: answers TXT queries on UDP from
files in a directory (one file per name, one TXT value per line, as certbot's manual auth hook
writes them); every other query gets an empty NOERROR answer. Prints its port, then serves
until killed.

usage: dns_server.py RECORD_DIR"""
import os, socket, struct, sys

records = sys.argv[1]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)


def qname(data, i):
    labels = []
    while data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels), i + 1


while True:
    data, peer = sock.recvfrom(4096)
    if len(data) < 12:
        continue
    name, end = qname(data, 12)
    qtype = struct.unpack("!H", data[end:end + 2])[0]
    question = data[12:end + 4]
    answers = []
    path = os.path.join(records, name.lower())
    if qtype == 16 and os.path.isfile(path):
        for line in open(path).read().split():
            v = line.encode()
            rdata = bytes([len(v)]) + v
            answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 0, len(rdata)) + rdata)
    header = data[:2] + struct.pack("!HHHHH", 0x8180, 1, len(answers), 0, 0)
    sock.sendto(header + question + b"".join(answers), peer)
