package main

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a single-member etcd on loopback ports. A port taken by another socket
// between choosing and binding it is chosen again (see ports.go).
func startEtcd(dataDir string) (*embed.Etcd, string, error) {
	var lost error
	for range 5 {
		e, url, err := startEtcdOnce(dataDir)
		if err == nil || !addressInUse(err) {
			return e, url, err
		}
		lost = err
	}
	return nil, "", fmt.Errorf("every port chosen was taken before etcd bound it: %w", lost)
}

// startEtcdOnce runs etcd on two newly chosen ports. Fsync is off: the data is thrown away
// with the test run, and fsync dominates start-up and write latency on slow disks.
func startEtcdOnce(dataDir string) (*embed.Etcd, string, error) {
	clientPort, err := unusedPort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := unusedPort()
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "testplane"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, clientURL.String(), nil
	case err := <-e.Err():
		e.Close()
		return nil, "", err
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("not ready after 60s")
	}
}
