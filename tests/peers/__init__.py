"""Real SIP peers for the tests: Kamailio, sipp and baresip on 127.0.0.1, on ports picked at run time."""
