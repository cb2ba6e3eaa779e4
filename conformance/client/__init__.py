"""Client conformance: a legal-but-hostile QMP peer and a verdict on a client.

A QMP client is judged by what it writes and by whether it still gets its
answers when the server uses the liberties the specification leaves it:

* :mod:`conformance.client.liberties`: each liberty as data and a pure
  rewrite of what the server writes (members in another order, members and
  events from the future, stray replies, reworded errors, slow writes, a
  disconnect at some byte, ...), none of which breaks a server rule;
* :mod:`conformance.client.proxy`: the I/O: a UNIX socket the client
  connects to, in front of a real server (the reference server by
  default), rewriting the server's output and recording both directions;
* :mod:`conformance.client.judge`: the client-side rules visible on the
  wire (Q13, Q24, Q26, one JSON object per request, nothing before the
  greeting), judged over the recorded bytes;
* :mod:`conformance.client.runner`: runs a client command once without a
  liberty and once under each, and gives the verdicts as a
  :class:`conformance.runner.RunResult` (``qmp-conform check-client``).
"""
