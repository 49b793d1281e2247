"""Local Kubernetes control planes (etcd + kube-apiserver) for tests and the demo.

The binaries (etcd, kube-apiserver, kubectl, helm) are found in ``KUBEBUILDER_ASSETS`` or a cache
outside the repository, or built into it from the Go module proxy (``binaries``, ``gobuild``); the
control planes start on loopback as controller-runtime's envtest starts them (``controlplane``),
and those ``acm-lite dev up`` leaves running are found again by later commands.
"""
