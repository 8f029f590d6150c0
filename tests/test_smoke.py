def test_counter_goes_up_across_requests(make_client):
    client = make_client()
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
