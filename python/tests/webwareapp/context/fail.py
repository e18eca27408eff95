from HTTPServlet import HTTPServlet


class fail(HTTPServlet):
    """POST: changes the session, then fails (Webware still stores the session)."""

    def respondToPost(self, trans):
        trans.session().setValue("failed", True)
        raise ValueError("the servlet failed")
