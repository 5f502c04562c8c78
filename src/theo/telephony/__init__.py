"""Telephony input: RTP and AudioSocket wire formats, G.711 payloads, DTMF and jitter.

Everything here is pure protocol (bytes in, values out, no sockets and no event loop apart
from :func:`theo.telephony.audiosocket.read_frame`); the transports that own the sockets
and feed a session live under ``theo.server``.
"""
