def test_queue_info_answers_with_the_spec_fields(api_client, db):
    body = api_client.get("/api/3d/queue/info").json()
    assert body["estimated_time_per_job_seconds"] == 130
    assert body["estimated_preview_time_seconds"] == 20
