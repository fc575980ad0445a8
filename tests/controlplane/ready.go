package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
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

// previousPort is the apiserver port in the kubeconfig an earlier run left, or 0.
func previousPort(kubeconfig string) int {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return 0
	}
	cluster, ok := cfg.Clusters["testplane"]
	if !ok {
		return 0
	}
	u, err := url.Parse(cluster.Server)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0
	}
	return port
}

// waitReady polls /readyz as the admin until it answers 200 (true) or ctx ends (false).
func waitReady(ctx context.Context, server string, p *pki) bool {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testplane: admin key pair: %v\n", err)
		return false
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
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
