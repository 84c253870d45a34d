#!/bin/sh
# Makes the test PKI of tests/client (committed; valid for 100 years): a CA, a
# server certificate for the name supra.test (and 127.0.0.1), and a client
# certificate for mTLS. Run from this directory; needs openssl.
set -eu
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days -subj "/CN=supra test CA"
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr -subj "/CN=supra test $who"
done
printf 'subjectAltName=DNS:supra.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days $days -extfile $who.ext
done
rm -f ca.key ca.srl server.csr client.csr server.ext client.ext
