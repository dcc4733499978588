"""Models and engines in this process (training steps, evaluation, real finished runs), the loopback S3 server and
the fake Kubernetes API server."""
