"""What every output shows the same way: the colour of each value tier and the cohort window.

The workbook, the HTML report and the Power BI theme take their tier colours
from here, so Gold is gold wherever a reader meets it.
"""

from crm_assets.core.rules import TIERS

# Hex RGB without '#': openpyxl takes it as is, HTML and Power BI prefix '#'.
TIER_COLOURS = {
    "Diamond": "5DADE2",
    "Platinum": "6C7A89",
    "Gold": "D4AF37",
    "Silver": "BFC5CC",
    "Bronze": "B87333",
    "Passive": "A0937D",
}
# the migration matrix's placeholder for no tier (Not Active or not yet a customer)
NO_TIER_COLOUR = "F2F2F2"
assert tuple(TIER_COLOURS) == TIERS, "a colour for every tier, in the tiers' order"

# Active means units in the last 12 months, so a cohort is Active by definition
# in its months 0-11; the cohort views start where retention says something.
COHORT_FIRST_MONTH = 12
# cohorts shown: this many first-purchase months, each with this many months since COHORT_FIRST_MONTH
COHORT_MONTHS = 24

# Colour scales: the migration matrix white (low) to green (high); cohort
# shares red (0 %) - yellow (50 %) - green (100 %).
COLOR_SCALE = dict(start_type="min", start_color="FFFFFF", end_type="max", end_color="63BE7B")
COHORT_SCALE = dict(
    start_type="num",
    start_value=0,
    start_color="F8696B",
    mid_type="num",
    mid_value=0.5,
    mid_color="FFEB84",
    end_type="num",
    end_value=1,
    end_color="63BE7B",
)
