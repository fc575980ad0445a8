package main

import (
	"os"
	"path/filepath"
)

// auditPolicy records what a test needs to tell how a client reads Secrets, and nothing else:
//
//   - list of secrets at RequestResponse: the response object's kind tells a metadata-only list
//     (PartialObjectMetadataList, which carries no data) from a full one (SecretList). The
//     request's Accept header, which asks for the metadata, is not part of an audit event, so
//     the response is the only evidence. A full list therefore writes Secret data into the log:
//     that is the failure the log exists to catch, it happens in a test's throwaway directory,
//     and tests put only made-up values in Secrets.
//   - every other request on secrets (get, watch, create, ...) at Metadata: the verb, the
//     Secret's name and who asked, never data. A watch's events are never part of an audit
//     event at any level, so the log cannot say whether a watch was metadata-only.
//   - the apiserver's own requests (its informer of Secrets, for ServiceAccount token
//     authentication) and everything that is not a Secret: not logged.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
omitManagedFields: true
rules:
- level: None
  users: ["system:apiserver"]
- level: RequestResponse
  verbs: ["list"]
  resources: [{group: "", resources: ["secrets"]}]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: None
`

// auditLogFlags writes the audit policy into dir and returns the apiserver flags that log by it
// to path, as JSON lines, synchronously (while the request is served, not from a buffer that
// may lag), without rotation.
func auditLogFlags(dir, path string) ([]string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + path,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--audit-log-maxsize=0",
		"--audit-log-maxbackup=0",
	}, nil
}
