"""Webware for Python 3 on sessiondir: the session store
:class:`~sessiondir.webware.SessionSessiondirStore.SessionSessiondirStore`.

Webware imports a session store by the module path in its ``SessionStore`` setting and takes
the class named like the module's last part, so the store lives in its own module::

    # Configs/Application.config
    SessionStore = 'sessiondir.webware.SessionSessiondirStore'
    SessiondirPath = '/var/lib/myapp/sessions'    # default: SessionStoreDir/sessiondir

See that module for the check-in/check-out strategy (the one the TO DO in Webware's own
``SessionStore`` docstring asks for).
"""

__all__: list[str] = []
