def test_openapi_is_public(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/api/processes/{process_id}" in response.json["paths"]


def test_unknown_route_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json == {"id": "not_found", "message": "Not found"}
