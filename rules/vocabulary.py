"""The words every rule, contract and service uses: one definition each.

A value outside these tuples is refused by the contracts (``contracts/``) and by every catalog
file at load (``rules.loader``). Adding one: see the checklists in docs/rules.md.
"""
from __future__ import annotations

CATEGORIES = (
    "food_safety",
    "drugs_medical_devices",
    "special_equipment",
    "product_quality",
    "false_advertising",
    "counterfeit_ip_infringement",
    "price_fraud",
    "unfair_competition",
    "unlicensed_operation",
    "tax_violation",
    "personal_data_abuse",
    "obstructing_inspection",
    "refusing_to_perform_decision",
    "environmental_pollution",
    "work_safety",
    "contract_fraud",
    "e_commerce_violation",
)
SEVERITIES = ("minor", "general", "serious", "especially_serious")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
PENALTY_TYPES = (
    "warning",
    "public_criticism",
    "fine",
    "confiscation",
    "licence_revocation",
    # 吊销营业执照 and 责令关闭 (行政处罚法 第九条（三）（四）): 公司法 第一百七十八条（四）
    # names them, not the revocation of any other licence.
    "business_licence_revocation",
    "ordered_closure",
    "licence_downgrade",
    "suspension",
    "occupational_ban",
    "detention_referral",
    # 不予行政处罚: the agency decided not to penalise (中华人民共和国行政处罚法 第三十三条). It
    # stands alone on a record and no catalog trigger may be keyed on it (``rules.measures``).
    "none",
)
NO_PENALTY = "none"
# 简易程序 (行政处罚法 第五十一条: decided on the spot) and 普通程序; records before v2 are
# ``ordinary``.
PROCEDURES = ("summary", "ordinary")
# The persons a record names as responsible (issue 18 item 4, for the persons issue 21): 法定代表人,
# 负责人, 董事, 监事, 高级管理人员, 直接负责的主管人员, 其他直接责任人员.
PERSON_ROLES = ("legal_representative", "principal", "director", "supervisor", "senior_manager",
                "responsible_manager", "responsible_staff")
MAX_PERSONS = 20  # on one record
# 严重违法失信名单 and 经营异常名录; how long each lasts is in ``catalog/periods.json``.
LISTS = ("serious_violation", "abnormal_operations")
# Where a measure is applied. ``honours``: 表彰奖励 (SAMR Order 44 art. 15(四)); ``supervision``:
# the market regulator's own inspections (art. 15(二)).
SECTORS = ("market_access", "approvals", "credit", "taxes", "procurement", "platforms",
           "honours", "supervision")
# What a measure does (issue 18): only ``prohibit`` makes a gate-keeping answer say "may not pass".
EFFECTS = ("prohibit", "stricter_review", "consideration", "supervision", "inform")
# Whom a measure binds: the entity, or the persons named on its record in that role (issue 21).
SUBJECTS = ("entity",) + PERSON_ROLES
# What a person measure bars a person from taking, as a registration or licence office asks it
# (``POST /v1/persons:status``): 担任法定代表人 / 负责人 (企业信息公示暂行条例 第十八条), 担任董事、
# 监事、高级管理人员 (公司法 第一百七十八条), 申请食品生产经营许可, 从事食品生产经营管理工作,
# 担任食品安全管理人员 (食品安全法 第一百三十五条).
POSITIONS = ("legal_representative", "principal", "director", "supervisor", "senior_manager",
             "food_licence", "food_management", "food_safety_manager")
RISK_CLASSES = ("A", "B", "C", "D")
