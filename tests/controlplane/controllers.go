package main

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
)

// namespaceSyncPeriod and namespaceWorkers are kube-controller-manager's defaults
// (--namespace-sync-period, --concurrent-namespace-syncs).
const (
	namespaceSyncPeriod = 5 * time.Minute
	namespaceWorkers    = 10
)

// startNamespaceController runs the one controller-manager controller tests need: the
// namespace controller, which deletes a Terminating namespace's content and then the namespace
// (without it a deleted namespace stays Terminating for ever). It is wired as
// kube-controller-manager's app/core.go does, with the admin kubeconfig, and stops with ctx.
func startNamespaceController(ctx context.Context, kubeconfig string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("namespace controller: %w", err)
	}
	// As upstream: deleting a namespace's content is many discovery and delete calls.
	config.QPS = 20 * 20
	config.Burst = 30 * 100
	config.UserAgent = "testplane/namespace-controller"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("namespace controller: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("namespace controller: %w", err)
	}
	// The informer resyncs at least as often as the controller asks its handler to.
	factory := informers.NewSharedInformerFactory(client, namespaceSyncPeriod)
	controller := namespacecontroller.NewNamespaceController(
		ctx,
		client,
		metadataClient,
		client.Discovery().ServerPreferredNamespacedResources,
		factory.Core().V1().Namespaces(),
		namespaceSyncPeriod,
		v1.FinalizerKubernetes,
	)
	factory.Start(ctx.Done())
	go controller.Run(ctx, namespaceWorkers)
	return nil
}
