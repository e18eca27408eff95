import os
import time

from HTTPServlet import HTTPServlet

DELAY = float(os.environ.get("SESSIONDIR_TEST_DELAY_MS", "0")) / 1000


class incr(HTTPServlet):
    """POST: a read-modify-write of the counter."""

    def respondToPost(self, trans):
        session = trans.session()
        n = session.value("n", 0)
        if DELAY:
            time.sleep(DELAY)  # the servlet's work between reading and writing
        session.setValue("n", n + 1)
        trans.response().write(str(n + 1))
