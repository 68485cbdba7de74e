"""The exception every failed Garden call raises."""

import grpc


class GardenError(grpc.RpcError):
    """A call that failed: the server's status, or the channel's (a server that is down).

    ``code()`` is the ``grpc.StatusCode``, ``details()`` the server's message (as
    ``garden`` prints it after ``garden: CODE:``), ``address`` the server asked, and
    ``method`` the RPC. ``str(error)`` names all of them::

        garden 127.0.0.1:50051 StreamHistograms: NOT_FOUND: step 7 is not present ...

    It is a ``grpc.RpcError``, so code that catches those keeps working.
    """

    def __init__(self, address, method, code, details):
        self.address = address
        self.method = method
        self._code = code
        self._details = details or ""
        super().__init__(str(self))

    def code(self):
        return self._code

    def details(self):
        return self._details

    def __str__(self):
        name = self._code.name if isinstance(self._code, grpc.StatusCode) else str(self._code)
        where = f"garden {self.address}" + (f" {self.method}" if self.method else "")
        return f"{where}: {name}: {self._details}"

    def __repr__(self):
        return (f"GardenError(address={self.address!r}, method={self.method!r}, "
                f"code={self._code}, details={self._details!r})")

    def __reduce__(self):
        return (GardenError, (self.address, self.method, self._code, self._details))


def from_rpc_error(error, address, method):
    """The GardenError for a grpc.RpcError raised by a call (or a stream's read)."""
    if isinstance(error, GardenError):
        return error
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return GardenError(address, method, code, details)
