package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scanagent test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

type syncWriter struct {
	ch chan string
}

func (w syncWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}

func TestLocalAPIOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, pool := writeCert(t, dir)
	cfg, err := config.Parse([]byte(fmt.Sprintf("[agent]\ndata_dir = %q\n[platform]\nmode = \"off\"\n[his.api]\nlisten = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\n", dir, certPath, keyPath)),
		"tls.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := syncWriter{ch: make(chan string, 100)}
	a, err := build(cfg, zerolog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	var addr string
	for addr == "" {
		select {
		case line := <-logs.ch:
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "listening" && m["tls"] == true {
				addr, _ = m["addr"].(string)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no TLS listener")
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		// Go's server answers plain HTTP on a TLS port with a 400; any
		// answer is fine as long as it is not the API.
		r, _ := http.Get("http://" + addr + "/v1/status")
		if r != nil && r.StatusCode == 200 {
			t.Fatal("plain HTTP served the API on the TLS port")
		}
	}
	cancel()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "context") {
		t.Fatal(err)
	}
}
