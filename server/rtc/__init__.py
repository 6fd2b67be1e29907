"""The live mic: attendees' voices over WebRTC (aiortc), relayed to the room as stage packets.

One module per job: ``mics`` (the grant state machine, pure), ``policy`` (which addresses ICE
may gather on and send to), ``peer`` (one aiortc peer connection), ``vad`` (voice activity),
``relay`` (voice into stage packets on the media clock), ``transcribe`` (speech-to-text) and
``service`` (the asyncio shell the gateway talks to); with ``rtc.media = "bus"`` the peers
run on a media node instead: ``media_node`` (``serve --role media``), ``remote`` (the
authority's side of it) and ``media_wire`` (what they say over NATS).
"""
