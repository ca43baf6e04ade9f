"""The demo city as plain data: 西宁市's districts, communities, canteens, kitchens, accounts,
subsidy policies and what meals cost.

District names and administrative division codes are real; communities, addresses, canteens
and people are illustrative, not a register of real places or persons. The subsidy policies
are modelled on what Chinese cities publish (amounts per meal by category, a cap per day or
month, Beijing's operator allowance, Xiamen's minimum meal price), not copied from one. Later
demo content (residents, dishes, menus, meals) belongs here too, next to what it refers to by
code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

CITY_NAME = "西宁市"

BREAKFAST = "breakfast"
LUNCH = "lunch"
DINNER = "dinner"
# every demo canteen keeps the programme's usual serving times
SLOT_HOURS = {
    BREAKFAST: ("07:00", "09:00"),
    LUNCH: ("11:00", "13:30"),
    DINNER: ("17:00", "19:00"),
}
SUNDAY = 6  # Monday = 0


@dataclass(frozen=True)
class DistrictSeed:
    code: str  # administrative division code
    name: str
    slug: str  # pinyin, for the officer's username
    officer_name: str
    communities: tuple[str, ...]


@dataclass(frozen=True)
class CanteenSeed:
    code: str
    name: str
    kind: str  # central_kitchen | canteen | meal_point
    district_code: str
    community: str | None
    address: str
    staff_name: str  # the one demo account working there
    seats: int = 0
    slots: tuple[str, ...] = ()
    closed_weekdays: tuple[int, ...] = ()
    halal: bool = False
    supplied_by: str | None = None  # code of the central kitchen

    @property
    def opening_hours(self) -> dict[str, list[str]]:
        return {slot: list(SLOT_HOURS[slot]) for slot in self.slots}


@dataclass(frozen=True)
class AccountSeed:
    username: str
    role: str
    display_name: str
    scope_name: str
    district_code: str | None = None
    canteen_code: str | None = None


DISTRICTS: tuple[DistrictSeed, ...] = (
    DistrictSeed("630102", "城东区", "chengdong", "马建国", ("东关大街社区", "八一路社区", "周家泉社区", "东兴社区")),
    DistrictSeed("630103", "城中区", "chengzhong", "李卫红", ("南大街社区", "礼让街社区", "北大街社区")),
    DistrictSeed("630104", "城西区", "chengxi", "王海燕", ("虎台社区", "古城台社区", "西交通巷社区")),
    DistrictSeed("630105", "城北区", "chengbei", "张志强", ("朝阳社区", "小桥大街社区", "马坊社区")),
    DistrictSeed("630106", "湟中区", "huangzhong", "祁永福", ("鲁沙尔镇和平社区", "鲁沙尔镇莲湖社区")),
    DistrictSeed("630121", "大通回族土族自治县", "datong", "韩玉兰", ("桥头镇东门社区", "桥头镇南关社区")),
    DistrictSeed("630123", "湟源县", "huangyuan", "赵德明", ("城关镇明清街社区", "城关镇西大街社区")),
)

# Central kitchens come first: canteens name their supplier by code. The 城东区 kitchen cooks
# halal (清真), so it can supply halal meal points as well as everyone else.
KITCHENS: tuple[CanteenSeed, ...] = (
    CanteenSeed(
        "CD-ZYCF",
        "城东区中央厨房",
        "central_kitchen",
        "630102",
        "东兴社区",
        "城东区韵家口镇昆仑东路180号",
        staff_name="冶成林",
        halal=True,
    ),
    CanteenSeed(
        "CB-ZYCF",
        "城北区中央厨房",
        "central_kitchen",
        "630105",
        "马坊社区",
        "城北区生物园区经二路12号",
        staff_name="孙国庆",
    ),
)

CANTEENS: tuple[CanteenSeed, ...] = (
    # 城东区: 东关 is home to many Hui residents; its canteens cook halal
    CanteenSeed(
        "CD-DGDJ",
        "东关大街社区爱老幸福食堂",
        "canteen",
        "630102",
        "东关大街社区",
        "城东区东关大街56号",
        staff_name="马秀兰",
        seats=60,
        slots=(BREAKFAST, LUNCH, DINNER),
        halal=True,
    ),
    CanteenSeed(
        "CD-BYL",
        "八一路社区爱老幸福食堂",
        "canteen",
        "630102",
        "八一路社区",
        "城东区八一中路18号",
        staff_name="刘淑芬",
        seats=40,
        slots=(LUNCH, DINNER),
        closed_weekdays=(SUNDAY,),
        supplied_by="CD-ZYCF",
    ),
    CanteenSeed(
        "CD-ZJQ",
        "周家泉社区助餐点",
        "meal_point",
        "630102",
        "周家泉社区",
        "城东区周家泉巷9号",
        staff_name="韩桂英",
        seats=16,
        slots=(LUNCH,),
        closed_weekdays=(SUNDAY,),
        halal=True,
        supplied_by="CD-ZYCF",
    ),
    CanteenSeed(
        "CD-DX",
        "东兴社区爱老幸福食堂",
        "canteen",
        "630102",
        "东兴社区",
        "城东区韵家口镇东兴路27号",
        staff_name="马文清",
        seats=36,
        slots=(BREAKFAST, LUNCH),
        halal=True,
    ),
    # 城中区
    CanteenSeed(
        "CZ-NDJ",
        "南大街社区爱老幸福食堂",
        "canteen",
        "630103",
        "南大街社区",
        "城中区南大街32号",
        staff_name="陈丽娟",
        seats=50,
        slots=(BREAKFAST, LUNCH, DINNER),
        supplied_by="CD-ZYCF",
    ),
    CanteenSeed(
        "CZ-LRJ",
        "礼让街社区助餐点",
        "meal_point",
        "630103",
        "礼让街社区",
        "城中区礼让街15号",
        staff_name="杨春梅",
        seats=20,
        slots=(LUNCH,),
        closed_weekdays=(SUNDAY,),
        supplied_by="CD-ZYCF",
    ),
    # 城西区
    CanteenSeed(
        "CX-HT",
        "虎台社区爱老幸福食堂",
        "canteen",
        "630104",
        "虎台社区",
        "城西区虎台三路8号",
        staff_name="周建华",
        seats=45,
        slots=(BREAKFAST, LUNCH),
    ),
    CanteenSeed(
        "CX-GCT",
        "古城台社区助餐点",
        "meal_point",
        "630104",
        "古城台社区",
        "城西区古城台街21号",
        staff_name="吴晓燕",
        seats=18,
        slots=(LUNCH,),
        closed_weekdays=(SUNDAY,),
        supplied_by="CB-ZYCF",
    ),
    # 城北区
    CanteenSeed(
        "CB-CY",
        "朝阳社区爱老幸福食堂",
        "canteen",
        "630105",
        "朝阳社区",
        "城北区朝阳东路66号",
        staff_name="郭红霞",
        seats=48,
        slots=(LUNCH, DINNER),
        supplied_by="CB-ZYCF",
    ),
    CanteenSeed(
        "CB-XQDJ",
        "小桥大街社区助餐点",
        "meal_point",
        "630105",
        "小桥大街社区",
        "城北区小桥大街42号",
        staff_name="何玉珍",
        seats=20,
        slots=(LUNCH,),
        supplied_by="CB-ZYCF",
    ),
    # 湟中区: the county town 鲁沙尔镇
    CanteenSeed(
        "HZ-HP",
        "和平社区爱老幸福食堂",
        "canteen",
        "630106",
        "鲁沙尔镇和平社区",
        "湟中区鲁沙尔镇和平路12号",
        staff_name="祁桂兰",
        seats=30,
        slots=(BREAKFAST, LUNCH),
        closed_weekdays=(SUNDAY,),
    ),
    CanteenSeed(
        "HZ-LH",
        "莲湖社区助餐点",
        "meal_point",
        "630106",
        "鲁沙尔镇莲湖社区",
        "湟中区鲁沙尔镇莲湖路5号",
        staff_name="李永红",
        seats=12,
        slots=(LUNCH,),
        closed_weekdays=(SUNDAY,),
        supplied_by="CD-ZYCF",
    ),
    # 大通回族土族自治县: the county town 桥头镇, with many Hui and Tu residents
    CanteenSeed(
        "DT-DM",
        "东门社区爱老幸福食堂",
        "canteen",
        "630121",
        "桥头镇东门社区",
        "大通县桥头镇东门街3号",
        staff_name="撒海英",
        seats=40,
        slots=(BREAKFAST, LUNCH, DINNER),
        halal=True,
    ),
    CanteenSeed(
        "DT-NG",
        "南关社区助餐点",
        "meal_point",
        "630121",
        "桥头镇南关社区",
        "大通县桥头镇南关街19号",
        staff_name="鲁成英",
        seats=15,
        slots=(LUNCH,),
        supplied_by="CB-ZYCF",
    ),
    # 湟源县: the county town 城关镇
    CanteenSeed(
        "HY-MQJ",
        "明清街社区爱老幸福食堂",
        "canteen",
        "630123",
        "城关镇明清街社区",
        "湟源县城关镇明清街7号",
        staff_name="冯志刚",
        seats=32,
        slots=(LUNCH, DINNER),
        closed_weekdays=(SUNDAY,),
    ),
    CanteenSeed(
        "HY-XDJ",
        "西大街社区助餐点",
        "meal_point",
        "630123",
        "城关镇西大街社区",
        "湟源县城关镇西大街26号",
        staff_name="谢春兰",
        seats=14,
        slots=(LUNCH,),
        closed_weekdays=(SUNDAY,),
        supplied_by="CB-ZYCF",
    ),
)

ADMIN_USERNAME = "admin"
ADMIN_DISPLAY_NAME = "市民政局 管理员"


def _accounts() -> tuple[AccountSeed, ...]:
    # one account per role and scope: the admin, an officer per district, one person per canteen
    accounts = [AccountSeed(ADMIN_USERNAME, "admin", ADMIN_DISPLAY_NAME, CITY_NAME)]
    accounts += [
        AccountSeed(f"officer.{d.slug}", "district_officer", d.officer_name, d.name, district_code=d.code)
        for d in DISTRICTS
    ]
    accounts += [
        AccountSeed(f"kitchen.{k.code.lower()}", "kitchen_staff", k.staff_name, k.name, canteen_code=k.code)
        for k in KITCHENS
    ]
    accounts += [
        AccountSeed(f"staff.{c.code.lower()}", "canteen_staff", c.staff_name, c.name, canteen_code=c.code)
        for c in CANTEENS
    ]
    return tuple(accounts)


ACCOUNTS: tuple[AccountSeed, ...] = _accounts()


# --- residents ---------------------------------------------------------------------------------
# Demo residents are generated (canteen.demo.residents) from the lists below: names put together
# from common surnames and given names, ID numbers made up with a valid check digit. They are not
# real people.

# share of the demo residents living in each district (roughly by population)
RESIDENT_SHARES: dict[str, int] = {
    "630102": 22,  # 城东区
    "630103": 18,  # 城中区
    "630104": 18,  # 城西区
    "630105": 16,  # 城北区
    "630106": 12,  # 湟中区
    "630121": 8,  # 大通回族土族自治县
    "630123": 6,  # 湟源县
}

# the most common surnames, each with a rough weight
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 14),
    ("李", 13),
    ("张", 12),
    ("刘", 10),
    ("陈", 8),
    ("杨", 7),
    ("赵", 6),
    ("黄", 4),
    ("周", 4),
    ("吴", 4),
    ("徐", 3),
    ("孙", 3),
    ("马", 5),
    ("朱", 3),
    ("胡", 3),
    ("郭", 3),
    ("何", 2),
    ("林", 2),
    ("高", 2),
    ("罗", 2),
    ("祁", 2),
    ("鲁", 1),
    ("冯", 2),
    ("谢", 1),
)
# surnames common among Hui families of 东关, 韵家口 and 大通
HUI_SURNAMES: tuple[tuple[str, int], ...] = (("马", 10), ("韩", 4), ("沙", 2), ("冶", 2), ("撒", 1))

# given names as they were chosen for people born 1930–1965
GIVEN_NAMES_FEMALE: tuple[str, ...] = (
    "秀英",
    "桂英",
    "玉兰",
    "淑珍",
    "秀兰",
    "桂兰",
    "玉珍",
    "凤英",
    "秀珍",
    "淑英",
    "桂芳",
    "玉梅",
    "秀云",
    "兰英",
    "春梅",
    "翠花",
    "素珍",
    "玉英",
    "凤兰",
    "秀芳",
    "丽华",
    "红梅",
    "桂花",
    "淑芬",
    "英",
    "兰",
    "芳",
    "珍",
    "梅",
    "霞",
)
GIVEN_NAMES_MALE: tuple[str, ...] = (
    "建国",
    "建华",
    "国强",
    "志强",
    "德明",
    "永福",
    "建军",
    "国庆",
    "文明",
    "振华",
    "德福",
    "永祥",
    "玉林",
    "宝山",
    "长林",
    "福元",
    "学文",
    "成林",
    "海林",
    "忠义",
    "金山",
    "德胜",
    "守仁",
    "有才",
    "明",
    "强",
    "军",
    "林",
    "福",
    "山",
)
# the same for Hui men (many given names are shared)
GIVEN_NAMES_HUI_MALE: tuple[str, ...] = (
    "文清",
    "有福",
    "忠孝",
    "进财",
    "成龙",
    "明德",
    "永福",
    "德明",
    "海林",
    "福元",
    "学礼",
    "占魁",
    "俊",
    "良",
)

# what the registration forms say about diet (restrictions, allergens, a note in the officer's words)
DIET_PROFILES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("low_sugar",), (), "糖尿病，少糖"),
    (("low_sugar", "low_fat"), (), "糖尿病，控制主食"),
    (("low_salt",), (), "高血压，低盐"),
    (("low_salt", "low_fat"), (), "高血压、高血脂，低盐少油"),
    (("soft",), (), "牙口不好，软食"),
    (("soft", "low_salt"), (), "假牙，软食；血压偏高"),
    (("minced",), (), "吞咽困难，食物需剁碎"),
    (("minced", "soft"), (), "中风后吞咽困难，糊状软食"),
    (("low_fat",), (), "胆囊切除，少油"),
    (("vegetarian",), (), "吃素"),
    (("low_salt",), ("shellfish",), "高血压，低盐；海鲜过敏"),
    ((), ("peanut",), "花生过敏"),
    ((), ("milk",), "乳糖不耐受，不喝牛奶"),
    (("soft",), ("egg",), "软食；鸡蛋过敏"),
)

# reasons an officer gives for a suspension, and how a death is learned of
SUSPENSION_REASONS: tuple[str, ...] = ("住院治疗，暂停助餐", "外出探亲，暂停助餐", "入住养老院，暂停助餐")
DEATH_REASON = "民政部门通报死亡"

CATEGORY_EVIDENCE: dict[str, str] = {
    "extreme_poverty": "特困人员供养证（民政局核发）",
    "subsistence": "低保证（民政局核发）",
    "low_income": "低收入家庭认定书",
    "disabled": "失能等级评估报告",
    "living_alone": "社区走访记录：独居",
    "special_care": "优抚对象证明",
}

EMERGENCY_RELATIONS: tuple[str, ...] = ("儿子", "女儿", "儿媳", "女婿", "侄子", "老伴", "邻居")

# demo phone numbers come from one block that no subscriber holds in this demo: 170 0000 xxxx
DEMO_PHONE_PREFIX = "1700000"
DEMO_CARD_PREFIX = "XN"


# --- subsidy policies --------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleSeed:
    category: str  # canteen.subsidies.models.RULE_CATEGORIES
    slot: str  # breakfast | lunch | dinner | any
    amount_fen: int
    unit: str = "per_meal"  # per_meal | per_day
    min_price_fen: int | None = None
    max_per_day: int | None = None
    max_per_month: int | None = None

    def as_rule(self) -> dict:
        return {
            "category": self.category,
            "slot": self.slot,
            "amount_fen": self.amount_fen,
            "unit": self.unit,
            "min_price_fen": self.min_price_fen,
            "max_per_day": self.max_per_day,
            "max_per_month": self.max_per_month,
        }


@dataclass(frozen=True)
class PolicySeed:
    district_code: str
    name: str
    valid_from: date
    rules: tuple[RuleSeed, ...]
    valid_to: date | None = None  # set: the policy was ended on that day and replaced
    operator_allowance_fen: int = 0


POLICIES_FROM = date(2025, 1, 1)
ANY = "any"
PER_DAY = "per_day"

# One policy in force per district, open-ended; 城东区 shows a change of policy (the 2025 one
# ended on 31 December, the 2026 one raised the amounts). Amounts are fen per meal.
POLICIES: tuple[PolicySeed, ...] = (
    PolicySeed(
        "630102",
        "城东区老年助餐补贴（2025年）",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", ANY, 200),
            RuleSeed("aged_80_plus", ANY, 400),
            RuleSeed("subsistence", LUNCH, 600),
            RuleSeed("extreme_poverty", LUNCH, 600),
        ),
        valid_to=date(2025, 12, 31),
    ),
    PolicySeed(
        "630102",
        "城东区老年助餐补贴（2026年调整）",
        date(2026, 1, 1),
        (
            RuleSeed("aged_60_plus", ANY, 300),
            RuleSeed("aged_80_plus", ANY, 500),
            RuleSeed("subsistence", LUNCH, 800),
            RuleSeed("extreme_poverty", LUNCH, 800),
            RuleSeed("disabled", ANY, 600),
        ),
    ),
    # Beijing pays the operator 3 yuan per resident served per day on top of the meal subsidy
    PolicySeed(
        "630103",
        "城中区老年助餐补贴及运营补助",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", ANY, 300),
            RuleSeed("aged_80_plus", ANY, 500),
            RuleSeed("subsistence", LUNCH, 800),
            RuleSeed("extreme_poverty", LUNCH, 800),
            RuleSeed("disabled", LUNCH, 600),
            RuleSeed("special_care", LUNCH, 500),
        ),
        operator_allowance_fen=300,
    ),
    # Xiamen subsidises only meals of at least 10 yuan: breakfast here is at full price
    PolicySeed(
        "630104",
        "城西区老年助餐补贴（每餐不低于10元）",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", ANY, 300, min_price_fen=1000),
            RuleSeed("aged_80_plus", ANY, 500, min_price_fen=1000),
            RuleSeed("subsistence", LUNCH, 800, min_price_fen=1000),
            RuleSeed("extreme_poverty", LUNCH, 800, min_price_fen=1000),
            RuleSeed("disabled", LUNCH, 600, min_price_fen=1000),
        ),
    ),
    # as Xining pays: each subsidy once a day, on the first meal it covers
    PolicySeed(
        "630105",
        "城北区老年助餐补贴（每人每天一次）",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", ANY, 300, unit=PER_DAY),
            RuleSeed("aged_80_plus", ANY, 500, unit=PER_DAY),
            RuleSeed("subsistence", ANY, 800, unit=PER_DAY),
            RuleSeed("extreme_poverty", ANY, 800, unit=PER_DAY),
        ),
    ),
    PolicySeed(
        "630106",
        "湟中区老年助餐补贴",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", BREAKFAST, 100),
            RuleSeed("aged_60_plus", LUNCH, 300, max_per_month=31),
            RuleSeed("aged_80_plus", LUNCH, 500, max_per_month=31),
            RuleSeed("subsistence", LUNCH, 800, max_per_month=31),
            RuleSeed("extreme_poverty", LUNCH, 800, max_per_month=31),
        ),
    ),
    # at most two subsidised meals a day for the age subsidy
    PolicySeed(
        "630121",
        "大通县老年助餐补贴",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", ANY, 300, max_per_day=2),
            RuleSeed("aged_80_plus", ANY, 500, max_per_day=2),
            RuleSeed("subsistence", LUNCH, 800),
            RuleSeed("extreme_poverty", LUNCH, 800),
            RuleSeed("disabled", ANY, 600),
            RuleSeed("living_alone", LUNCH, 400),
        ),
    ),
    PolicySeed(
        "630123",
        "湟源县老年助餐补贴",
        POLICIES_FROM,
        (
            RuleSeed("aged_60_plus", LUNCH, 200),
            RuleSeed("aged_80_plus", LUNCH, 400),
            RuleSeed("subsistence", LUNCH, 600),
            RuleSeed("extreme_poverty", LUNCH, 800),
            RuleSeed("disabled", LUNCH, 500),
        ),
    ),
)


# --- meals -------------------------------------------------------------------------------------
# what a meal costs (fen), by kind of canteen and slot; a meal point serves a smaller set lunch
MEAL_PRICES: dict[str, dict[str, int]] = {
    "canteen": {BREAKFAST: 500, LUNCH: 1200, DINNER: 1000},
    "meal_point": {LUNCH: 1000},
}
# a few canteens charge otherwise (in the city centre lunch has an extra dish)
MEAL_PRICE_OVERRIDES: dict[str, dict[str, int]] = {
    "CZ-NDJ": {LUNCH: 1500, DINNER: 1200},
    "CD-DGDJ": {LUNCH: 1500},
}

# why counter staff vouched for a resident instead of a card or ID
ATTEST_REASONS: tuple[str, ...] = (
    "老人忘带卡，工作人员认识本人",
    "卡片损坏，已登记补办",
    "老人忘带卡，社区网格员在场确认",
)
# why a meal was voided at the counter, right after it was recorded
VOID_REASONS: tuple[str, ...] = (
    "老人临时有事未取餐，已退款",
    "刷错卡，登记错人",
    "老人身体不适未用餐，餐费已退",
)
# the one void that was corrected by recording the meal again
CORRECTION_REASON = "录入错误：应为打包自取，已重新登记"
# who collected a meal on a resident's behalf (the resident's surname is added for family)
COLLECTORS: tuple[tuple[str, str, bool], ...] = (
    ("女儿", "女士", True),
    ("儿子", "先生", True),
    ("儿媳", "女士", False),
    ("邻居", "阿姨", False),
)
