"""Local Kubernetes control planes (etcd + kube-apiserver) for tests and the demo.

The binaries are built from the Go module proxy into a cache outside the repository (``binaries``),
then started on loopback as controller-runtime's envtest does (``controlplane``).
"""
