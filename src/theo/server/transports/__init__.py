"""Transport adapters: each connects clients of one protocol to a realtime session.

The session core (:class:`theo.session.core.RealtimeSession`) takes audio and commands
and emits typed events (:mod:`theo.session.events`); it knows no wire format. An adapter
only translates: its protocol's messages into ``push`` and the commands, the events into
its protocol's messages, and the session's end into its own way of hanging up. Domain
errors become error events in :mod:`theo.session.errors`, never in an adapter.
"""
