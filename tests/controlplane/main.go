// testplane runs a real kube-apiserver backed by an embedded etcd in one process, for the
// operator's integration tests. It is a test tool only: of the controller-manager it runs just
// the namespace controller (so deleted namespaces are emptied and go away); no scheduler, no
// garbage collector, no token controller.
//
//	testplane --dir DIR [--port N] [--exit-on-stdin-eof] [--remove-dir] [--audit-log PATH]
//	          [--node --address IP]
//
// With --node it is the control plane of the test node (hack/node/run.sh), where
// kube-controller-manager, kube-scheduler, a kubelet and kube-proxy run beside it: it listens on
// --address (an address pods reach, e.g. the pod bridge's) instead of loopback, publishes itself
// as the endpoint of Service "kubernetes", admits pods through ServiceAccount admission (their
// tokens are mounted the ordinary way), lets the kubelet's client certificate be the admin's, and
// leaves the namespace controller to kube-controller-manager. The default mode is unchanged.
//
// It writes certificates and DIR/kubeconfig, prints "ready" on stdout once /readyz passes,
// and shuts both servers down on SIGINT/SIGTERM, or when stdin closes if asked to: a test
// harness holds the pipe, so the control plane goes away with the test process however it ends.
//
// With --audit-log the apiserver writes an audit log of Secret requests to PATH (JSON lines; see
// audit.go), so that a test can check how a client reads Secrets.
//
// Started again on a DIR it used before (without --remove-dir), it keeps that run's
// certificates, etcd data and, unless --port says otherwise, port: clients of the first run,
// with their kubeconfig, reconnect to the second as if the apiserver had restarted.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	_ "time/tzdata" // as upstream's kube-apiserver main

	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	dir := flag.String("dir", "", "directory for certificates, etcd data and kubeconfig (required)")
	port := flag.Int("port", 0, "apiserver secure port (0 picks a free one)")
	exitOnEOF := flag.Bool("exit-on-stdin-eof", false, "shut down when stdin reaches end of file")
	removeDir := flag.Bool("remove-dir", false, "delete DIR after shutdown (etcd preallocates 64 MB of WAL per run)")
	node := flag.Bool("node", false, "serve a test node: ServiceAccount admission on, Service endpoints, no built-in namespace controller")
	address := flag.String("address", "127.0.0.1", "address to listen on and advertise (with --node, one pods can reach)")
	auditLog := flag.String("audit-log", "", "write an audit log of Secret requests to this file (JSON lines; appended to across restarts)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "testplane: --dir is required")
		os.Exit(2)
	}
	if *exitOnEOF {
		go terminateOnStdinEOF()
	}
	ip := net.ParseIP(*address)
	if ip == nil {
		fmt.Fprintf(os.Stderr, "testplane: --address %q is not an IP address\n", *address)
		os.Exit(2)
	}
	err := run(*dir, *port, mode{node: *node, address: ip, auditLog: *auditLog})
	if *removeDir {
		if rmErr := os.RemoveAll(*dir); rmErr != nil {
			fmt.Fprintf(os.Stderr, "testplane: removing %s: %v\n", *dir, rmErr)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testplane: %v\n", err)
		os.Exit(1)
	}
}

// mode is what differs between the default control plane, a test node's and an audited one.
type mode struct {
	node    bool
	address net.IP
	// auditLog is where the audit log of Secret requests goes; empty for none.
	auditLog string
}

func run(dir string, port int, m mode) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The apiserver command installs the process's SIGINT/SIGTERM handler when it is built,
	// so build it first: a signal during etcd start-up then still cancels its context.
	cmd := app.NewAPIServerCommand()

	if port == 0 {
		port = previousPort(filepath.Join(dir, "kubeconfig"))
	}
	if port == 0 {
		if port, err = unusedPort(); err != nil {
			return err
		}
	}
	pki, err := ensurePKI(dir, m.address)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	server := "https://" + net.JoinHostPort(m.address.String(), strconv.Itoa(port))
	if err := writeKubeconfig(filepath.Join(dir, "kubeconfig"), server, pki); err != nil {
		return err
	}
	flags := apiserverFlags(dir, port, etcdURL, m)
	if m.auditLog != "" {
		auditFlags, err := auditLogFlags(dir, m.auditLog)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		flags = append(flags, auditFlags...)
	}
	cmd.SetArgs(flags)

	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()
	go func() {
		ctx := cmd.Context()
		if !waitReady(ctx, server, pki) {
			return
		}
		if !m.node {
			if err := startNamespaceController(ctx, filepath.Join(dir, "kubeconfig")); err != nil {
				fmt.Fprintf(os.Stderr, "testplane: %v\n", err)
				return
			}
		}
		fmt.Println("ready")
	}()

	select {
	case err := <-done:
		return err
	case err := <-etcd.Err():
		return fmt.Errorf("etcd stopped: %w", err)
	}
}

func apiserverFlags(dir string, port int, etcdURL string, m mode) []string {
	flags := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + m.address.String(),
		"--advertise-address=" + m.address.String(),
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://" + net.JoinHostPort(m.address.String(), strconv.Itoa(port)),
		"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// Stop within seconds even with clients watching (operators under test): without it
		// net/http waits up to --request-timeout (60 s) for open watch connections.
		"--shutdown-send-retry-after=true",
		"--profiling=false",
		"--v=0",
	}
	if !m.node {
		return append(flags,
			// The "kubernetes" Service's endpoints cannot point at loopback; nothing here needs them.
			"--endpoint-reconciler-type=none",
			// No controller-manager creates default ServiceAccounts, so this plugin would refuse pods.
			"--disable-admission-plugins=ServiceAccount",
		)
	}
	return append(flags,
		// kubectl logs and exec: the kubelet trusts certificates of this CA (its x509 client CA).
		"--kubelet-client-certificate="+filepath.Join(dir, "admin.crt"),
		"--kubelet-client-key="+filepath.Join(dir, "admin.key"),
		"--kubelet-preferred-address-types=InternalIP",
	)
}

// terminateOnStdinEOF sends this process SIGTERM once stdin closes, so shutdown takes the same
// graceful path as a signal from outside.
func terminateOnStdinEOF() {
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
}
