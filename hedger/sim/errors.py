"""Rejections with Deribit's error codes, so a server can send ``{"error": e.to_deribit()}``
and ccxt maps it to the same exception class as against the real venue."""

from __future__ import annotations

from typing import ClassVar


class SimError(Exception):
    """Base of every venue rejection: a Deribit code, its message, and a reason for people."""

    code: ClassVar[int] = 10001
    message: ClassVar[str] = "error"

    def __init__(self, reason: str, **data: object) -> None:
        super().__init__(f"{self.code} {self.message}: {reason}")
        self.reason = reason
        self.data = data

    def to_deribit(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"reason": self.reason, **self.data},
        }


class InvalidOrderError(SimError):
    """An order the venue refuses as such (ccxt ``InvalidOrder``)."""


class InvalidAmountError(InvalidOrderError):
    code = 10021
    message = "invalid_amount"


class InvalidPriceError(InvalidOrderError):
    code = 10023
    message = "invalid_price"


class BookClosedError(InvalidOrderError):
    code = 10012
    message = "book_closed"


class PostOnlyRejectError(InvalidOrderError):
    code = 11054
    message = "post_only_reject"


class NotEnoughFundsError(SimError):
    code = 10009
    message = "not_enough_funds"


class OrderNotFoundError(SimError):
    code = 10004
    message = "order_not_found"


class NotOpenOrderError(InvalidOrderError):
    """Cancel of an order that is already filled or cancelled."""

    code = 11044
    message = "not_open_order"


class InvalidInstrumentError(SimError):
    code = 10020
    message = "invalid_instrument"


class InvalidArgumentsError(SimError):
    code = 11029
    message = "invalid_arguments"
