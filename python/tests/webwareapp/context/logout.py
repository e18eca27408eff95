from HTTPServlet import HTTPServlet


class logout(HTTPServlet):
    """POST: the session is invalidated (Webware deletes it from the store)."""

    def respondToPost(self, trans):
        trans.session().invalidate()
        trans.response().write("bye")
