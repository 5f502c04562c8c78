"""Phone calls: each call is a realtime session fed by a telephony transport (RTP or
AudioSocket) with no client attached; applications follow calls through the calls API."""
