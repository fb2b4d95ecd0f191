"""`RefineRecommendation`: turn a chosen city into a concrete suggestion from local travel notes."""

from collections.abc import Mapping, Sequence
from typing import Any

import azure.durable_functions as df

bp = df.Blueprint()

# Season scores (higher is better), sights, and one tip per season. Local data on purpose: the sample
# is about custom status, and an outside service would make the activity flaky in tests.
TRAVEL_NOTES: dict[str, dict[str, Any]] = {
    "Tokyo": {
        "seasonScores": {"Spring": 5, "Summer": 3, "Autumn": 4, "Winter": 2},
        "sights": ["Senso-ji", "Shinjuku Gyoen", "Tsukiji Outer Market"],
        "tips": {
            "Spring": "Book early: cherry-blossom weeks fill hotels months ahead.",
            "Summer": "Carry water and plan indoor stops; July and August are humid.",
            "Autumn": "Visit the gardens in late November for the maple colours.",
            "Winter": "Clear winter days give the best views of Mount Fuji.",
        },
    },
    "Seattle": {
        "seasonScores": {"Spring": 3, "Summer": 5, "Autumn": 3, "Winter": 1},
        "sights": ["Pike Place Market", "Space Needle", "Discovery Park"],
        "tips": {
            "Spring": "Pack a rain jacket; April showers come and go quickly.",
            "Summer": "Take a ferry to Bainbridge Island on a clear evening.",
            "Autumn": "Early October still has dry, mild days for the waterfront.",
            "Winter": "Short days: plan museums and coffee shops.",
        },
    },
    "London": {
        "seasonScores": {"Spring": 4, "Summer": 4, "Autumn": 3, "Winter": 2},
        "sights": ["British Museum", "Tower of London", "Hyde Park"],
        "tips": {
            "Spring": "The Royal Parks are at their best in May.",
            "Summer": "Buy theatre tickets in advance for West End shows.",
            "Autumn": "Many museums run late openings on Fridays.",
            "Winter": "Ice rinks and markets open from late November.",
        },
    },
}


def refine(city: str, seasons: Sequence[str]) -> dict[str, Any]:
    """Pick the best of the recommended `seasons` for `city` and describe the trip."""
    notes = TRAVEL_NOTES.get(city)
    if notes is None:
        raise ValueError(f"No travel notes for {city!r}; known cities: {', '.join(TRAVEL_NOTES)}.")
    scores: dict[str, int] = notes["seasonScores"]
    candidates = [season for season in seasons if season in scores] or list(scores)
    # max() keeps the first of equal scores, so ties go to the season the segment listed first.
    best = max(candidates, key=lambda season: scores[season])
    return {
        "city": city,
        "bestSeason": best,
        "sights": list(notes["sights"]),
        "tip": notes["tips"][best],
    }


@bp.activity_trigger(input_name="request")
def RefineRecommendation(request: dict) -> dict:
    if not isinstance(request, Mapping) or not isinstance(request.get("city"), str):
        raise ValueError(f"RefineRecommendation needs {{'city': str, 'seasons': [...]}}, got {request!r}.")
    seasons = request.get("seasons") or []
    return refine(request["city"], [season for season in seasons if isinstance(season, str)])
