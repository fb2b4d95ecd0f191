"""The app's function catalogue as the host must see it; shared by the metadata and deployment tests."""

ORCHESTRATORS = ("CityRecommender", "ReserveTicket", "SetStatusTest")
ACTIVITIES = {"CalculateDiscount": "userId", "RefineRecommendation": "request", "PerformAction": "request"}
# name -> (route without the `api` prefix, methods)
HTTP_FUNCTIONS = {
    "start_orchestration": ("orchestrators/{functionName}", ["POST"]),
    "confirm_reservation": ("reservations/{instanceId}/confirmation", ["POST"]),
    "select_city": ("recommendations/{instanceId}/selection", ["POST"]),
    "get_instance_status": ("instances/{instanceId}", ["GET"]),
}
ALL_FUNCTIONS = {*ORCHESTRATORS, *ACTIVITIES, *HTTP_FUNCTIONS}
