#!/bin/sh
# make-certs.sh OUTDIR CLUSTER_ID NODES: the TLS material raftkit's tests and raftkit-bench
# use, made with the openssl command (no network; EC P-256 keys, so it takes well under a
# second). Certificates name their node by the URI subject alternative name that
# raftkit/asio/tls_transport.hpp reads: raftkit://cluster/<CLUSTER_ID>/node/<id> (decimal),
# and by IP:127.0.0.1 and DNS:node-<id>, so they serve raftkit-kv's HTTPS on loopback too.
#
# In OUTDIR:
#   ca.pem ca.key                  the cluster's CA
#   node<i>.pem node<i>.key        node i = 1..NODES from ca, valid for ten years
#   next-ca.pem next-ca.key        a second CA, for rotation tests
#   next-node<i>.pem/.key          node i from next-ca
#   foreign-ca.pem                 a CA nobody trusts
#   foreign-node1.pem/.key         "node 1" from the foreign CA
#   expired-node1.pem/.key         node 1 from ca, valid only in January 2020
#   other-cluster-node1.pem/.key   node 1 of cluster CLUSTER_ID+1, from ca
# The files are remade on every run; the keys are new each time, the names and validity
# periods are not.
set -eu
out=$1
cluster=$2
nodes=$3
mkdir -p "$out"
cd "$out"
serial=100

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME: a self-signed CA certificate and key, NAME.pem and NAME.key.
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/O=raftkit tests/CN=$1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# ext ID [CLUSTER]: the extensions of node ID's certificate, in ext.cnf.
ext() {
  c=${2:-$cluster}
  cat > ext.cnf <<END
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:raftkit://cluster/$c/node/$1,DNS:node-$1,IP:127.0.0.1
END
}

# node CA ID NAME [CLUSTER]: node ID's certificate signed by CA, NAME.pem and NAME.key.
node() {
  key "$3.key"
  openssl req -new -key "$3.key" -out "$3.csr" -subj "/O=raftkit tests/CN=node-$2" 2>/dev/null
  ext "$2" "${4:-$cluster}"
  serial=$((serial + 1))
  openssl x509 -req -in "$3.csr" -CA "$1.pem" -CAkey "$1.key" -set_serial "$serial" -days 3650 \
    -extfile ext.cnf -out "$3.pem" 2>/dev/null
  rm -f "$3.csr"
}

ca ca
ca next-ca
ca foreign-ca
i=1
while [ "$i" -le "$nodes" ]; do
  node ca "$i" "node$i"
  node next-ca "$i" "next-node$i"
  i=$((i + 1))
done
node foreign-ca 1 foreign-node1
node ca 1 other-cluster-node1 $((cluster + 1))

# An expired certificate needs a start date in the past, which only `openssl ca` sets.
key expired-node1.key
openssl req -new -key expired-node1.key -out expired.csr -subj "/O=raftkit tests/CN=node-1" 2>/dev/null
ext 1
: > index.txt
echo 1000 > serial
cat > ca.cnf <<END
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
END
openssl ca -config ca.cnf -batch -notext -cert ca.pem -keyfile ca.key -in expired.csr \
  -out expired-node1.pem -startdate 20200101000000Z -enddate 20200201000000Z -extfile ext.cnf 2>/dev/null
rm -f expired.csr ext.cnf ca.cnf index.txt index.txt.attr index.txt.old serial serial.old 1000.pem
