package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

// keyPair checks a server's certificate and key as the server will load
// them: both or neither, readable, PEM, and belonging together. prefix names
// the section ("his.api", "gateway").
func (v *validator) keyPair(prefix, certFile, keyFile string) {
	switch {
	case certFile == "" && keyFile == "":
	case keyFile == "":
		v.add(prefix+".tls_key", "required when tls_cert is set")
	case certFile == "":
		v.add(prefix+".tls_cert", "required when tls_key is set")
	default:
		if _, err := loadKeyPair(prefix, certFile, keyFile); err != nil {
			v.errs = append(v.errs, err)
		}
	}
}

// loadKeyPair reads the pair (as tls.LoadX509KeyPair does) and returns the
// leaf certificate, or an error naming the field at fault.
func loadKeyPair(prefix, certFile, keyFile string) (*x509.Certificate, *FieldError) {
	certPath, keyPath := prefix+".tls_cert", prefix+".tls_key"
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &FieldError{certPath, fmt.Sprintf("cannot read: %v", err)}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &FieldError{keyPath, fmt.Sprintf("cannot read: %v", err)}
	}
	var leaf *x509.Certificate
	for rest := certPEM; leaf == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, &FieldError{certPath, fmt.Sprintf("no PEM certificate (-----BEGIN CERTIFICATE-----) in %s", certFile)}
		}
		if b.Type == "CERTIFICATE" {
			if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, &FieldError{certPath, fmt.Sprintf("invalid certificate in %s: %v", certFile, err)}
			}
		}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			return nil, &FieldError{keyPath, fmt.Sprintf("does not match tls_cert: %s is not the key of %s", keyFile, certFile)}
		}
		return nil, &FieldError{keyPath, fmt.Sprintf("no usable private key in %s: %s", keyFile, msg)}
	}
	return leaf, nil
}

// Warnings returns problems that do not stop the agent but will trouble
// its clients: today, a server certificate outside its validity period.
// Call it on a configuration that validated.
func (c *Config) Warnings() []*FieldError {
	var w []*FieldError
	check := func(prefix string, enabled bool, certFile, keyFile string) {
		if !enabled || certFile == "" || keyFile == "" {
			return
		}
		leaf, err := loadKeyPair(prefix, certFile, keyFile)
		if err != nil {
			return
		}
		now := time.Now()
		switch {
		case now.After(leaf.NotAfter):
			w = append(w, &FieldError{prefix + ".tls_cert", fmt.Sprintf("certificate expired on %s: clients will refuse the connection", leaf.NotAfter.Format(time.DateOnly))})
		case now.Before(leaf.NotBefore):
			w = append(w, &FieldError{prefix + ".tls_cert", fmt.Sprintf("certificate is not valid before %s: clients will refuse the connection", leaf.NotBefore.Format(time.DateOnly))})
		}
	}
	check("his.api", c.HIS.API.Enabled, c.HIS.API.TLSCert, c.HIS.API.TLSKey)
	check("gateway", c.Gateway.Enabled, c.Gateway.TLSCert, c.Gateway.TLSKey)
	return w
}
