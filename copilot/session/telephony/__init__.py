"""Live calls from the phone system: SIPREC (RFC 7866) from a PBX/SBC, and media streams over WebSocket.

``server`` answers recording sessions (SIP via the pinned ``aiosipua`` library, receive-only RTP),
``siprec`` reads the multipart body (SDP + rs-metadata) and tells which stream is the agent's, ``rtp``
parses packets and puts them on a timeline (reordering, gaps, silence suppression), ``g711`` decodes
PCMU/PCMA, ``media_stream`` takes the same audio as WebSocket messages, ``feed`` turns a phone call's
audio into the events of one :class:`copilot.session.call.CallSession`, ``registry`` keeps the calls in
progress by agent extension, and ``service`` runs it all on one asyncio loop and stores each call's review
when it ends.
"""
