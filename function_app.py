"""Entry point of the Functions app (Python v2 programming model): registers every blueprint.

Functions: orchestrators `CityRecommender`, `ReserveTicket`, `SetStatusTest`; activities
`CalculateDiscount`, `RefineRecommendation`, `PerformAction`; HTTP functions `start_orchestration`,
`confirm_reservation`, `select_city`, `get_instance_status` (routes under the `api` prefix).
"""

import azure.durable_functions as df
import azure.functions as func

from activities import calculate_discount, perform_action, refine_recommendation
from endpoints import instances, recommendations, reservations, starter
from orchestrators import city_recommender, reserve_ticket, set_status_progress
from ui import bp as ui_bp

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for module in (
    city_recommender,
    reserve_ticket,
    set_status_progress,
    calculate_discount,
    refine_recommendation,
    perform_action,
    starter,
    reservations,
    recommendations,
    instances,
):
    app.register_functions(module.bp)
app.register_functions(ui_bp)  # the progress page, GET /api/ui/
