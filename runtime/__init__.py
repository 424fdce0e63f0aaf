"""runtime: lazyarr's distributed runtime.

One central scheduler, many workers that pass data to each other peer to peer, and many
clients, all over ZeroMQ. The scheduler tracks metadata only; workers hold the data.
"""
