"""ReserveTicket end to end: discount shown while running, then confirmed, declined or expired."""

from __future__ import annotations

from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost
from tests.http_client import request


def test_confirmed_booking(host: RunningHost) -> None:
    """The discount is visible while Running (202); confirming completes with the thank-you message."""
    urls = start(host, "ReserveTicket", "user-42")
    running = wait_for_custom(urls, "discount")
    assert running["customStatus"]["discountTimeout"] == 60
    assert running["customStatus"]["bookingUrl"].startswith("https://")
    assert running["input"] is not None and running["output"] is None

    reply = request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True})
    assert reply.status == 202, reply.body

    final = wait_until_finished(urls)
    assert final["runtimeStatus"] == "Completed"
    assert final["customStatus"]["message"] == "Thank you for confirming your booking."
    assert final["output"] is True


def test_declined_booking(host: RunningHost) -> None:
    """Declining ends the reservation unconfirmed with a declined message."""
    urls = start(host, "ReserveTicket", {"userId": "user-7"})
    wait_for_custom(urls, "discount")
    assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": False}).status == 202
    final = wait_until_finished(urls)
    assert final["output"] is False
    assert "declined" in final["customStatus"]["message"]


def test_booking_times_out(host: RunningHost) -> None:
    """With nobody answering, the durable timer ends the offer with the timeout message."""
    urls = start(host, "ReserveTicket", {"userId": "user-slow", "discountTimeout": 1})
    running = wait_for_custom(urls, "discount")
    assert running["customStatus"]["discountTimeout"] == 1
    final = wait_until_finished(urls, timeout=20)
    assert final["output"] is False
    assert final["customStatus"]["message"] == "The booking was not confirmed on time. Please try again."


def test_event_through_send_event_post_uri(host: RunningHost) -> None:
    """The check-status payload's sendEventPostUri delivers BookingConfirmed to the instance."""
    urls = start(host, "ReserveTicket", "user-uri")
    wait_for_custom(urls, "discount")
    url = urls["sendEventPostUri"].replace("{eventName}", "BookingConfirmed")
    assert request("POST", url, True).status == 202
    final = wait_until_finished(urls)
    assert final["output"] is True


def test_confirmation_of_finished_instance_is_gone(host: RunningHost) -> None:
    """A confirmation for an instance that already finished answers 410 and changes nothing."""
    urls = start(host, "ReserveTicket", "user-twice")
    wait_for_custom(urls, "discount")
    assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True}).status == 202
    wait_until_finished(urls)
    again = request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": False})
    assert again.status == 410
    assert "error" in again.json
    assert wait_until_finished(urls)["output"] is True
