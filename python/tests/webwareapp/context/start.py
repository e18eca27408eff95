from HTTPServlet import HTTPServlet


class start(HTTPServlet):
    """POST: a new session with a counter at 0 (its cookie set by Webware)."""

    def respondToPost(self, trans):
        trans.session().setValue("n", 0)
        trans.response().write("started")
