"""What a run leaves: leaderboards and reports, retraining over seeds with paired intervals, the statistics."""
