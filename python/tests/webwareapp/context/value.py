from HTTPServlet import HTTPServlet


class value(HTTPServlet):
    """GET: the counter (``None`` without a session)."""

    def respondToGet(self, trans):
        n = trans.session().value("n", None) if trans.hasSession() else None
        trans.response().write(str(n))
