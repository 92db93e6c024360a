package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"

	"github.com/airlockhq/airlock/pkg/config"
)

// tlsFlags are certificate files for serving TLS and for calling peers.
type tlsFlags struct {
	cert, key string // the server's certificate and key
	clientCA  string // CA that client certificates must chain to; enables mutual TLS
	ca        string // CA that peer servers' certificates must chain to
}

func (t *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM certificate to serve TLS with (also presented to peers for mutual TLS)")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&t.clientCA, "tls-client-ca", "", "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM CA bundle to verify peer services' certificates; when set, peers are called over TLS")
}

func (t *tlsFlags) validate() error {
	if (t.cert == "") != (t.key == "") {
		if t.cert == "" {
			return config.Invalid("tls-cert", "required when --tls-key is set")
		}
		return config.Invalid("tls-key", "required when --tls-cert is set")
	}
	if t.clientCA != "" && t.cert == "" {
		return config.Invalid("tls-client-ca", "mutual TLS needs --tls-cert and --tls-key too")
	}
	for flag, path := range map[string]string{"tls-cert": t.cert, "tls-key": t.key, "tls-client-ca": t.clientCA, "tls-ca": t.ca} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return config.Invalid(flag, "%v", err)
		}
	}
	return nil
}

func loadPool(flag, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Invalid(flag, "%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, config.Invalid(flag, "%s holds no PEM certificate", path)
	}
	return pool, nil
}

// serverTLS returns the server's TLS config, or nil to serve plaintext.
func (t *tlsFlags) serverTLS() (*tls.Config, error) {
	if t.cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, config.Invalid("tls-cert", "loading key pair: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.clientCA != "" {
		pool, err := loadPool("tls-client-ca", t.clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// clientCreds returns credentials for calling peers, or nil for plaintext.
func (t *tlsFlags) clientCreds() (credentials.TransportCredentials, error) {
	if t.ca == "" {
		return nil, nil
	}
	cfg, err := t.clientTLS()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// clientTLS returns the TLS config for calling a server verified with
// --tls-ca, presenting --tls-cert when set (mutual TLS).
func (t *tlsFlags) clientTLS() (*tls.Config, error) {
	pool, err := loadPool("tls-ca", t.ca)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t.cert != "" {
		cert, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, config.Invalid("tls-cert", "loading key pair for mutual TLS: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
