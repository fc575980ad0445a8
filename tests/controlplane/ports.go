package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The ports this control plane listens on are chosen, tested and then bound again by etcd and
// the apiserver, so another socket can take one in between. Asking the kernel for port 0 picks
// from its ephemeral range, which is also where every outgoing connection of the parallel tests
// gets its local port and where every other test server listens: CI lost etcd's port that way.
// So choose below the ephemeral range, where neither lands, and above the ports the node's own
// servers use (kubelet 10250, NodePorts 30000-32767 are avoided by the upper bound).
const (
	lowestPort  = 20000
	highestPort = 29999
)

// unusedPort is a loopback port in [lowestPort, highestPort] that is free now and lies below
// the kernel's ephemeral range.
func unusedPort() (int, error) {
	high := highestPort
	if low := ephemeralLow(); low-1 < high {
		high = low - 1
	}
	if high < lowestPort {
		return 0, fmt.Errorf("the kernel's ephemeral ports start at %d: no room below it for test ports", high+1)
	}
	var last error
	for range 50 {
		port := lowestPort + rand.IntN(high-lowestPort+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			last = err
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d after 50 tries: %w", lowestPort, high, last)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default when unreadable).
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}

// addressInUse says whether err is a bind that lost its port to another socket.
func addressInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE)
}
