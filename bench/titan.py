"""The boss the server-path benchmarks fight: practically unkillable, so every strike counts."""

TITAN_BOSS = """
[bosses.titan]
name = "Bench Titan"
total_hp = 1000000000000000
duration_s = 1000000
dominant_stats = ["power", "endurance"]
weaknesses = ["fire"]
resistances = ["water"]
weakness_pool = ["wind", "light"]
curse_pool = ["brittle_mind", "tidal_ward", "iron_hide", "narrow_pass", "dread_aura", "veil"]
analysis_thresholds = [1000000000]
analysis_reward_pool = [{ gems = 1 }]
victory_cache = { gems = 1 }
"""
