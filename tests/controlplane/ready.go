package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func writeKubeconfig(path, server string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testplane"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["testplane"] = &clientcmdapi.Context{Cluster: "testplane", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "testplane"
	return clientcmd.WriteToFile(*cfg, path)
}

// announceReady polls /readyz as the admin and prints "ready" once it answers 200; the test
// harness waits for that line.
func announceReady(ctx context.Context, server string, p *pki) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testplane: admin key pair: %v\n", err)
		return
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}},
	}
	start := time.Now()
	for {
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(os.Stderr, "testplane: ready after %s\n", time.Since(start).Round(time.Millisecond))
				fmt.Println("ready")
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
