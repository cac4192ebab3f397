package nbd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPKI is a throwaway CA and a server certificate it signed, for
// localhost and 127.0.0.1.
type testPKI struct {
	caPEM      []byte
	serverCert tls.Certificate
	pool       *x509.CertPool
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

func getPKI(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

func makePKI() (testPKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testPKI{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vdisk test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return testPKI{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testPKI{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return testPKI{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		serverCert: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
		pool:       pool,
	}, nil
}

func serverTLS(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{getPKI(t).serverCert}, MinVersion: tls.VersionTLS12}
}

func clientTLS(t testing.TB) *tls.Config {
	return &tls.Config{RootCAs: getPKI(t).pool, ServerName: "localhost"}
}

func TestStartTLS(t *testing.T) {
	cfg, devs := threeExports()
	cfg.TLSConfig = serverTLS(t)
	_, addr := startServer(t, cfg)

	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optStartTLS, []byte{0}); last(rs) != repErrInvalid {
		t.Fatalf("STARTTLS with data: %#x", last(rs))
	}
	// Negotiated before TLS, so forgotten after it (spec: STARTTLS).
	c.option(optStructuredReply, nil)
	c.startTLS(clientTLS(t))
	if rs := c.option(optStartTLS, nil); last(rs) != repErrInvalid {
		t.Fatalf("second STARTTLS: %#x", last(rs))
	}
	if rs := c.option(optList, nil); last(rs) != repAck || len(rs) != 4 {
		t.Fatalf("LIST over TLS: %+v", rs)
	}
	c.goExport("disk", infoBlockSize)
	if c.flags&tflagSendDF != 0 {
		t.Fatal("structured replies survived STARTTLS")
	}
	want := pattern(1<<20, 4)
	if r := c.do(CmdWrite, FlagFUA, 4096, uint32(len(want)), want); r.errno != 0 {
		t.Fatalf("write over TLS: %d", r.errno)
	}
	r := c.do(CmdRead, 0, 4096, uint32(len(want)), nil)
	if !r.simple || r.errno != 0 {
		t.Fatalf("read over TLS: %+v", r.errno)
	}
	eqBytes(t, "TLS read back", r.data, want)
	got := make([]byte, len(want))
	devs["disk"].ReadAt(nil, got, 4096)
	eqBytes(t, "device", got, want)

	// Structured replies and block status work over TLS when negotiated
	// after it.
	c2 := dialT(t, "tcp", addr)
	c2.greet(clientFixedNewstyle)
	c2.startTLS(clientTLS(t))
	c2.option(optStructuredReply, nil)
	c2.sr = true
	c2.option(optSetMetaContext, metaData("disk", metaAllocation))
	c2.goExport("disk")
	if r := c2.do(CmdBlockStatus, 0, 0, 1<<20, nil); r.errno != 0 || r.chunks[0].typ != replyTypeBlockStatus {
		t.Fatalf("block status over TLS: %+v", r)
	}
	if r := c2.do(CmdRead, 0, 4096, 8192, nil); r.errno != 0 || r.dataChunks != 1 {
		t.Fatalf("structured read over TLS: %+v", r)
	}
	c2.request(CmdDisc, 0, 9, 0, 0, nil)
	c2.expectClosed()
}

func TestTLSRequired(t *testing.T) {
	cfg, _ := threeExports()
	cfg.TLSConfig = serverTLS(t)
	cfg.TLSRequired = true
	_, addr := startServer(t, cfg)

	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	for _, o := range []struct {
		opt  uint32
		data []byte
	}{
		{optList, nil},
		{optInfo, infoData("disk")},
		{optGo, infoData("")},
		{optStructuredReply, nil},
		{optListMetaContext, metaData("disk")},
		{optSetMetaContext, metaData("disk", metaAllocation)},
		{0x99, []byte("unknown")},
		{0x98, make([]byte, maxOptionData+10)},
	} {
		rs := c.option(o.opt, o.data)
		if len(rs) != 1 || last(rs) != repErrTLSReqd {
			t.Fatalf("option %d before TLS: %+v", o.opt, rs)
		}
	}
	c.startTLS(clientTLS(t))
	if rs := c.option(optInfo, infoData("disk")); last(rs) != repAck {
		t.Fatalf("INFO after TLS: %#x", last(rs))
	}
	if rs := c.option(0x99, nil); last(rs) != repErrUnsup {
		t.Fatalf("unknown option after TLS: %#x", last(rs))
	}
	c.goExport("ro")
	if r := c.do(CmdRead, 0, 0, 4096, nil); r.errno != 0 {
		t.Fatal(r.errno)
	}

	// ABORT is allowed before TLS.
	c = dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optAbort, nil); last(rs) != repAck {
		t.Fatalf("ABORT: %#x", last(rs))
	}
	c.expectClosed()

	// EXPORT_NAME before TLS cannot be answered: the session ends.
	c = dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	c.sendOpt(optExportName, []byte("disk"))
	c.expectClosed()

	// A failed TLS handshake after the ACK ends the session.
	c = dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optStartTLS, nil); last(rs) != repAck {
		t.Fatal("STARTTLS refused")
	}
	c.write([]byte("this is not a TLS client hello, not at all......"))
	c.expectClosed()
}

// writeTLSDir writes the CA in the layout libnbd (GnuTLS) expects.
func writeTLSDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca-cert.pem"), getPKI(t).caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
