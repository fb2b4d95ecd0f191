"""`ReserveTicket`: offer a personal discount and wait a limited time for the booking to be confirmed.

Custom status while waiting: `discount`, `discountTimeout`, `bookingUrl` (the article's instructions to
the client) plus `expiresAt`, the moment the offer lapses, for a countdown. Final status: `outcome`
(`confirmed`, `declined` or `expired`) and a human-readable `message`. Output: whether the booking
was confirmed.
"""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.events import BOOKING_CONFIRMED, Confirmation, read_confirmation
from orchestrators.inputs import InputError, parse_reserve_ticket_input, read_input
from orchestrators.timestamps import iso_utc

bp = df.Blueprint()

DISCOUNT_ACTIVITY = "CalculateDiscount"
BOOKING_URL = "https://www.myawesomebookingweb.com"
CONFIRMED_MESSAGE = "Thank you for confirming your booking."
DECLINED_MESSAGE = "The booking was declined."
EXPIRED_MESSAGE = "The booking was not confirmed on time. Please try again."


@bp.orchestration_trigger(context_name="context")
def ReserveTicket(context: df.DurableOrchestrationContext) -> Generator[Any, Any, bool]:
    try:
        request = parse_reserve_ticket_input(read_input(context))
    except InputError as error:
        context.set_custom_status({"stage": "invalid-input", "error": str(error)})
        raise

    discount = yield context.call_activity(DISCOUNT_ACTIVITY, request.user_id)

    # The offer window starts when the discount is shown, i.e. at the replay-safe time of this episode.
    expires_at = context.current_utc_datetime + timedelta(seconds=request.discount_timeout_seconds)
    context.set_custom_status(
        {
            "discount": discount,
            "discountTimeout": request.discount_timeout_seconds,
            "bookingUrl": BOOKING_URL,
            "expiresAt": iso_utc(expires_at),
        }
    )

    timer = context.create_timer(expires_at)
    confirmation = context.wait_for_external_event(BOOKING_CONFIRMED)
    winner = yield context.task_any([timer, confirmation])

    if winner == timer:
        context.set_custom_status({"outcome": "expired", "message": EXPIRED_MESSAGE})
        return False

    # Without the cancel, the pending timer would keep the instance Running until it fired.
    timer.cancel()
    if read_confirmation(confirmation.result) is Confirmation.CONFIRMED:
        context.set_custom_status({"outcome": "confirmed", "message": CONFIRMED_MESSAGE})
        return True
    context.set_custom_status({"outcome": "declined", "message": DECLINED_MESSAGE})
    return False
