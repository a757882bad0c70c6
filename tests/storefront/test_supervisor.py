"""How long the demo waits before starting a process again that died."""

from storefront.supervisor import RestartBackoff


def test_a_process_that_keeps_dying_at_start_waits_twice_as_long_each_time_up_to_30_s():
    backoff = RestartBackoff()

    delays = [backoff.delay_after(ran_for=0.5) for _ in range(7)]

    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_a_process_that_ran_for_a_minute_before_dying_is_restarted_after_1_s_again():
    backoff = RestartBackoff()
    for _ in range(5):
        backoff.delay_after(ran_for=0.5)

    assert backoff.delay_after(ran_for=60) == 1
    assert backoff.delay_after(ran_for=0.5) == 2
