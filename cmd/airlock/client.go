package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlockhq/airlock/pkg/auth"
)

// Client settings for the operator commands, from the environment:
// AIRLOCK_ADDR (default 127.0.0.1:50051), AIRLOCK_TOKEN (default: the admin
// key `airlock dev` saved under ./.airlock/), AIRLOCK_TLS_CA (call over TLS,
// verifying the server with this CA bundle), AIRLOCK_TLS_CERT and
// AIRLOCK_TLS_KEY (present a client certificate for mutual TLS).
const (
	defaultClientAddr = "127.0.0.1:50051"
	devAdminKeyFile   = "admin.key"
)

// clientAddr returns the server address the CLI talks to.
func clientAddr() string {
	if a := os.Getenv("AIRLOCK_ADDR"); a != "" {
		return a
	}
	return defaultClientAddr
}

// clientToken returns the API key the CLI sends: AIRLOCK_TOKEN, else the key
// `airlock dev` saved in ./.airlock/admin.key.
func clientToken() (string, error) {
	if t := strings.TrimSpace(os.Getenv("AIRLOCK_TOKEN")); t != "" {
		return t, nil
	}
	dir := os.Getenv("AIRLOCK_DATA_DIR")
	if dir == "" {
		dir = ".airlock"
	}
	b, err := os.ReadFile(filepath.Join(dir, devAdminKeyFile))
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("no API key: set AIRLOCK_TOKEN, or run `airlock dev` in this directory to create ./.airlock/admin.key")
}

// dialClient connects the CLI to the server with its API key.
func dialClient(cmd *cobra.Command) (*grpc.ClientConn, error) {
	token, err := clientToken()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	secure := false
	if ca := os.Getenv("AIRLOCK_TLS_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("AIRLOCK_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AIRLOCK_TLS_CA: %s holds no PEM certificate", ca)
		}
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert, key := os.Getenv("AIRLOCK_TLS_CERT"), os.Getenv("AIRLOCK_TLS_KEY"); cert != "" || key != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("AIRLOCK_TLS_CERT/AIRLOCK_TLS_KEY: %w", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		creds = credentials.NewTLS(cfg)
		secure = true
	}
	conn, err := grpc.NewClient(clientAddr(),
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token, Secure: secure}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (AIRLOCK_ADDR): %w", clientAddr(), err)
	}
	closeOnReturn(cmd, func() { conn.Close() })
	return conn, nil
}
