"""`CalculateDiscount`: a stable personal discount (5-30 %) derived from the user id."""

import hashlib

import azure.durable_functions as df

bp = df.Blueprint()

MIN_DISCOUNT = 5
MAX_DISCOUNT = 30


def discount_for(user_id: str) -> int:
    """Percentage discount for `user_id`; the same id always gets the same discount."""
    # A cryptographic digest rather than hash(): str hashes are salted per process, which would give
    # a user a different discount on every host restart.
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    span = MAX_DISCOUNT - MIN_DISCOUNT + 1
    return MIN_DISCOUNT + int.from_bytes(digest[:8], "big") % span


@bp.activity_trigger(input_name="userId")
def CalculateDiscount(userId: str) -> int:
    if not isinstance(userId, str) or not userId:
        raise ValueError(f"CalculateDiscount needs a non-empty user id string, got {userId!r}.")
    return discount_for(userId)
