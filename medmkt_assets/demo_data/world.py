"""The fixed demo world: segments, categories, products, bundles, conditions, the incident disease, campaigns.

Everything the analytics should discover is planted here, so tests can check the
pipeline against the generator's own truth.
"""
from __future__ import annotations

import numpy as np

WINDOW_START = np.datetime64("2024-07-01T00:00:00")
WINDOW_END = np.datetime64("2026-06-30T23:59:59")
SNAPSHOT = np.datetime64("2026-06-30")

CATEGORIES = ("cardiology", "diabetes_care", "dermatology", "vaccination", "checkup",
              "respiratory", "womens_health", "pediatrics", "wellbeing", "orthopedics")
CHANNELS = ("store", "online", "app", "phone", "clinic")

# name, share of patients, (age mean, sd), category mix, channel mix, mean orders in two
# years, price multiplier, digital events per patient, satisfaction mean
SEGMENTS = (
    ("young digital", 0.22, (28, 5), {"dermatology": .50, "checkup": .30, "womens_health": .10, "wellbeing": .10},
     {"online": .55, "app": .40, "store": .05}, 5, 0.9, 12, 4.2),
    ("chronic seniors", 0.24, (74, 6), {"diabetes_care": .45, "cardiology": .40, "orthopedics": .10, "checkup": .05},
     {"store": .60, "clinic": .35, "phone": .05}, 12, 1.0, 1, 3.7),
    ("young families", 0.20, (36, 5), {"vaccination": .45, "pediatrics": .40, "respiratory": .10, "checkup": .05},
     {"store": .50, "app": .45, "online": .05}, 6, 0.8, 5, 4.0),
    ("affluent wellness", 0.16, (52, 6), {"checkup": .45, "womens_health": .35, "orthopedics": .10, "dermatology": .10},
     {"online": .50, "phone": .45, "clinic": .05}, 7, 1.9, 6, 4.5),
    ("wellbeing and breath", 0.18, (43, 12), {"wellbeing": .50, "respiratory": .40, "checkup": .10},
     {"app": .60, "phone": .35, "online": .05}, 8, 1.1, 9, 3.4),
)

# ICD-10 code, name, linked category, prevalence per segment (in SEGMENTS order)
CONDITIONS = (
    ("E11", "Type 2 diabetes mellitus", "diabetes_care", (.01, .45, .01, .05, .03)),
    ("I10", "Essential (primary) hypertension", "cardiology", (.02, .55, .03, .15, .06)),
    ("J45", "Asthma", "respiratory", (.03, .02, .12, .02, .40)),
    ("L40", "Psoriasis", "dermatology", (.12, .01, .01, .05, .02)),
    ("F32", "Depressive episode", "wellbeing", (.08, .03, .03, .03, .45)),  # sensitive: never marketing's
    ("M17", "Osteoarthritis of knee", "orthopedics", (.00, .30, .00, .08, .02)),
)
CONDITION_BOOST = 3.0

# The incident disease the disease-risk model is judged on, with its true yearly risk
# r = sigmoid(intercept + age_per_decade*(age-60)/10 + female*is_female + Σ weight*has_condition)
# over the prevalent CONDITIONS above. Onsets are exponential with yearly hazard -ln(1-r)
# from INCIDENT_SINCE, so a patient without it at WINDOW_END gets it within the next 365
# days with chance exactly r. Mean r is about 4 % over all patients (AUC about 0.79 against
# one year's new cases); among those still without it at WINDOW_END, after ten years of
# onsets took the riskiest, about 2.4 % (AUC about 0.75).
# ICD-10 code, name, marker product stem, intercept, age per decade, female, {condition: weight}
INCIDENT = ("N18", "Chronic kidney disease", "Losartan 50 mg tablets", -3.2, 0.45, -0.2, {"E11": 0.6, "I10": 0.5})
INCIDENT_SINCE = np.datetime64("2016-07-01")
# The planted leak: chance that an order placed after onset also holds the marker product,
# bought because of the diagnosis; a model fed post-index purchases would find it.
INCIDENT_LEAK = 0.6

# The planted SENSITIVE incident (demo_data/sensitive.py): opioid dependence, more frequent than
# the incident above, so that a pipeline without the sensitive-data policy would make it its top
# disease-risk target, mine "F11.20 -> treatment" rules and learn it as a feature. Onsets since
# SENSITIVE_SINCE with yearly risk sigmoid(intercept + age_per_decade*(age-60)/10 + female*is_female
# + Σ weight*has_condition); after onset the patient fills the treatment (the catalog's marker
# product) in a month with chance SENSITIVE_REFILL. SENSITIVE_CONSENT of the patients with it
# consent to the care programme CARE_CAMPAIGN's purpose.
# ICD-10 code, name, treatment product stem, intercept, age per decade, female, {condition: weight}
SENSITIVE_INCIDENT = ("F11.20", "Opioid dependence, uncomplicated", "Buprenorphine/naloxone 8 mg/2 mg film",
                      -3.6, -0.25, -0.3, {"F32": 1.2})
SENSITIVE_SINCE = np.datetime64("2023-07-01")
SENSITIVE_REFILL = 0.6
SENSITIVE_CONSENT = 0.5
# A planned care programme (lib/privacy/sensitive_data.yaml: opioid_recovery) for the patients above
CARE_CAMPAIGN = ("C009", "Opioid recovery support", "care_opioid_recovery", "sms", "wellbeing",
                 "2026-07-20", "2026-09-30", 0.0)

# per category: (kind, price median) and product name stems
CATALOG = {
    "cardiology": ("drug", 45, ["Amlodipine 5 mg tablets", "Atorvastatin 20 mg tablets", "Metoprolol 50 mg tablets",
                                "Losartan 50 mg tablets", "Home blood pressure monitor", "ECG screening",
                                "Aspirin 100 mg tablets", "Cardiology consultation", "Lipid panel test",
                                "Rosuvastatin 10 mg tablets", "Holter monitoring", "Omega-3 capsules"]),
    "diabetes_care": ("drug", 40, ["Metformin 500 mg tablets", "Glucose test strips (50)", "Blood glucose meter",
                                   "Insulin glargine pen", "HbA1c test", "Lancets (100)", "Diabetic foot check",
                                   "Gliclazide 80 mg tablets", "Sitagliptin 100 mg tablets", "Diabetes nurse visit",
                                   "Continuous glucose sensor", "Insulin pen needles"]),
    "dermatology": ("drug", 30, ["Moisturising cream 200 ml", "Hydrocortisone 1% cream", "Sunscreen SPF50",
                                 "Acne gel", "Dermatology consultation", "Calcipotriol ointment",
                                 "Skin check (mole mapping)", "Antifungal cream", "Repair serum",
                                 "Medicated shampoo", "Laser skin treatment", "Eczema emollient"]),
    "vaccination": ("service", 60, ["Influenza vaccine", "HPV vaccine (9-valent)", "Hepatitis B vaccine",
                                    "MMR vaccine", "Pneumococcal vaccine", "Rotavirus vaccine", "Varicella vaccine",
                                    "DTaP booster", "Shingles vaccine", "Rabies vaccine", "Travel vaccine consult",
                                    "COVID-19 booster"]),
    "checkup": ("service", 120, ["Annual health checkup - basic", "Annual health checkup - premium",
                                 "Blood panel", "Eye examination", "Dental checkup", "Hearing test",
                                 "Bone density scan", "Thyroid test", "Vitamin D test", "Liver function test",
                                 "Executive health screening", "Chest X-ray"]),
    "respiratory": ("drug", 35, ["Salbutamol inhaler", "Budesonide inhaler", "Spacer device", "Peak flow meter",
                                 "Montelukast 10 mg tablets", "Nebuliser", "Spirometry test", "Cough syrup",
                                 "Saline nasal spray", "Allergy tablets", "Respiratory clinic visit",
                                 "Fluticasone nasal spray"]),
    "womens_health": ("service", 80, ["Gynaecology consultation", "Pap smear", "Folic acid tablets",
                                      "Prenatal vitamins", "Mammography", "Pregnancy test", "Contraceptive pill",
                                      "Menopause consultation", "Iron supplements", "Ultrasound scan",
                                      "Breast screening", "Fertility consultation"]),
    "pediatrics": ("service", 50, ["Paediatric consultation", "Children's paracetamol syrup", "Growth check",
                                   "Children's vitamins", "Oral rehydration salts", "Baby thermometer",
                                   "Infant formula consult", "Children's ibuprofen", "Well-child visit",
                                   "Nappy rash cream", "Children's allergy syrup", "Developmental screening"]),
    # the last stem is the planted sensitive incident's treatment (SENSITIVE_INCIDENT), never bought otherwise
    "wellbeing": ("service", 60, ["Sleep clinic visit", "Melatonin tablets", "Stress management class",
                                  "Mindfulness app subscription", "Meditation course", "Yoga class",
                                  "Massage session", "Nutrition consultation", "Fitness assessment",
                                  "Magnesium supplements", "Weight management programme",
                                  "Buprenorphine/naloxone 8 mg/2 mg film"]),
    "orthopedics": ("device", 70, ["Knee brace", "Physiotherapy session", "Orthopaedic consultation",
                                   "Glucosamine tablets", "Diclofenac gel", "Walking stick", "Back support belt",
                                   "Joint X-ray", "Orthotic insoles", "Hydrotherapy session",
                                   "Hyaluronic acid injection", "Compression stockings"]),
}
DRUG_WORDS = ("tablets", "cream", "inhaler", "syrup", "spray", "ointment", "gel", "capsules", "pen", "shampoo",
              "vitamins", "supplements", "pill", "salts", "film")
DEVICE_WORDS = ("monitor", "meter", "strips", "lancets", "device", "nebuliser", "brace", "stick", "belt",
                "insoles", "stockings", "thermometer", "sensor", "needles")

# (antecedent name, consequent name, planted probability that B joins an order with A)
BUNDLES = (
    ("Blood glucose meter", "Glucose test strips (50)", 0.80),
    ("Metformin 500 mg tablets", "Diabetic foot check", 0.55),
    ("Salbutamol inhaler", "Spacer device", 0.70),
    ("Influenza vaccine", "Pneumococcal vaccine", 0.60),
    ("Dermatology consultation", "Repair serum", 0.65),
    ("Stress management class", "Mindfulness app subscription", 0.75),
)

# campaign_id, name, purpose, channel, target category, start, end, cost per contact (CNY, fully loaded:
# the message or call, content, platform and staff time, not the bare delivery fee), uplift
PAST_CAMPAIGNS = (
    ("C001", "Diabetes care spring offer", "marketing", "sms", "diabetes_care", "2025-01-15", "2025-02-15", 1.20, 0.06),
    ("C002", "Skin care relaunch", "marketing", "email", "dermatology", "2025-03-01", "2025-03-31", 0.60, 0.04),
    ("C003", "Checkup awareness push", "marketing", "app_push", "checkup", "2025-06-01", "2025-06-30", 0.40, 0.0),
    ("C004", "Blood pressure refill reminder", "refill_reminder", "sms", "cardiology", "2025-09-01", "2025-09-30", 1.20, 0.08),
    ("C005", "Flu season education", "health_education", "wechat", "vaccination", "2025-11-01", "2025-11-30", 0.90, 0.03),
    ("C006", "Women's health week", "marketing", "call", "womens_health", "2026-02-01", "2026-02-28", 12.00, 0.05),
)
PLANNED_CAMPAIGNS = (
    ("C007", "Diabetes care summer programme", "marketing", "sms", "diabetes_care", "2026-07-15", "2026-08-15", 1.20, 0.06),
    ("C008", "Dermatology autumn offer", "marketing", "email", "dermatology", "2026-08-01", "2026-08-31", 0.60, 0.04),
)

REGIONS = {
    "Guangdong": (("Guangzhou", "510"), ("Shenzhen", "518"), ("Foshan", "528")),
    "Beijing": (("Beijing", "100"),),
    "Shanghai": (("Shanghai", "200"),),
    "Zhejiang": (("Hangzhou", "310"), ("Ningbo", "315")),
    "Jiangsu": (("Nanjing", "210"), ("Suzhou", "215")),
    "Sichuan": (("Chengdu", "610"), ("Mianyang", "621")),
    "Hubei": (("Wuhan", "430"), ("Yichang", "443")),
    "Shandong": (("Jinan", "250"), ("Qingdao", "266")),
}
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯健俊帆帅旭宁")
STREETS = ("人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "长江路", "黄河路", "南京路", "北京路")
QUERIES = {
    "cardiology": ("降压药", "blood pressure monitor", "胆固醇"), "diabetes_care": ("血糖仪", "metformin", "糖尿病饮食"),
    "dermatology": ("祛痘", "sunscreen", "湿疹"), "vaccination": ("HPV疫苗", "flu shot", "疫苗预约"),
    "checkup": ("体检套餐", "health checkup", "体检报告"), "respiratory": ("哮喘", "inhaler", "过敏性鼻炎"),
    "womens_health": ("孕检", "mammogram", "叶酸"), "pediatrics": ("儿童发烧", "children vitamins", "疫苗接种时间"),
    "wellbeing": ("失眠", "yoga class", "减压"), "orthopedics": ("膝盖疼", "physiotherapy", "护膝"),
}

# The Chinese name of each CATALOG stem (written as the products' extra `name_zh` column; a
# variant "<stem> (pack n)" is "<中文名>（规格n）").
CATALOG_ZH = {
    "Amlodipine 5 mg tablets": "氨氯地平片 5 mg", "Atorvastatin 20 mg tablets": "阿托伐他汀片 20 mg",
    "Metoprolol 50 mg tablets": "美托洛尔片 50 mg", "Losartan 50 mg tablets": "氯沙坦片 50 mg",
    "Home blood pressure monitor": "家用血压计", "ECG screening": "心电图筛查", "Aspirin 100 mg tablets": "阿司匹林片 100 mg",
    "Cardiology consultation": "心内科门诊", "Lipid panel test": "血脂检测", "Rosuvastatin 10 mg tablets": "瑞舒伐他汀片 10 mg",
    "Holter monitoring": "动态心电图监测", "Omega-3 capsules": "Omega-3 胶囊",
    "Metformin 500 mg tablets": "二甲双胍片 500 mg", "Glucose test strips (50)": "血糖试纸（50片）",
    "Blood glucose meter": "血糖仪", "Insulin glargine pen": "甘精胰岛素笔", "HbA1c test": "糖化血红蛋白检测",
    "Lancets (100)": "采血针（100支）", "Diabetic foot check": "糖尿病足检查", "Gliclazide 80 mg tablets": "格列齐特片 80 mg",
    "Sitagliptin 100 mg tablets": "西格列汀片 100 mg", "Diabetes nurse visit": "糖尿病护士随访",
    "Continuous glucose sensor": "动态血糖传感器", "Insulin pen needles": "胰岛素笔用针头",
    "Moisturising cream 200 ml": "保湿霜 200 ml", "Hydrocortisone 1% cream": "1% 氢化可的松乳膏",
    "Sunscreen SPF50": "防晒霜 SPF50", "Acne gel": "祛痘凝胶", "Dermatology consultation": "皮肤科门诊",
    "Calcipotriol ointment": "卡泊三醇软膏", "Skin check (mole mapping)": "皮肤检查（痣图谱）", "Antifungal cream": "抗真菌乳膏",
    "Repair serum": "修护精华", "Medicated shampoo": "药用洗发水", "Laser skin treatment": "激光皮肤治疗",
    "Eczema emollient": "湿疹润肤剂",
    "Influenza vaccine": "流感疫苗", "HPV vaccine (9-valent)": "九价HPV疫苗", "Hepatitis B vaccine": "乙肝疫苗",
    "MMR vaccine": "麻腮风疫苗", "Pneumococcal vaccine": "肺炎球菌疫苗", "Rotavirus vaccine": "轮状病毒疫苗",
    "Varicella vaccine": "水痘疫苗", "DTaP booster": "百白破加强针", "Shingles vaccine": "带状疱疹疫苗",
    "Rabies vaccine": "狂犬病疫苗", "Travel vaccine consult": "出行疫苗咨询", "COVID-19 booster": "新冠疫苗加强针",
    "Annual health checkup - basic": "年度体检 - 基础", "Annual health checkup - premium": "年度体检 - 高级",
    "Blood panel": "血液全套检查", "Eye examination": "眼科检查", "Dental checkup": "口腔检查", "Hearing test": "听力测试",
    "Bone density scan": "骨密度扫描", "Thyroid test": "甲状腺检测", "Vitamin D test": "维生素D检测",
    "Liver function test": "肝功能检测", "Executive health screening": "高管健康筛查", "Chest X-ray": "胸部X光",
    "Salbutamol inhaler": "沙丁胺醇吸入器", "Budesonide inhaler": "布地奈德吸入器", "Spacer device": "储雾罐",
    "Peak flow meter": "峰流速仪", "Montelukast 10 mg tablets": "孟鲁司特片 10 mg", "Nebuliser": "雾化器",
    "Spirometry test": "肺功能检测", "Cough syrup": "止咳糖浆", "Saline nasal spray": "生理盐水鼻喷剂",
    "Allergy tablets": "抗过敏片", "Respiratory clinic visit": "呼吸科门诊", "Fluticasone nasal spray": "氟替卡松鼻喷剂",
    "Gynaecology consultation": "妇科门诊", "Pap smear": "宫颈涂片检查", "Folic acid tablets": "叶酸片",
    "Prenatal vitamins": "孕期维生素", "Mammography": "乳腺X线摄影", "Pregnancy test": "验孕",
    "Contraceptive pill": "避孕药", "Menopause consultation": "更年期门诊", "Iron supplements": "补铁剂",
    "Ultrasound scan": "超声检查", "Breast screening": "乳腺筛查", "Fertility consultation": "生育咨询",
    "Paediatric consultation": "儿科门诊", "Children's paracetamol syrup": "儿童对乙酰氨基酚糖浆", "Growth check": "生长发育检查",
    "Children's vitamins": "儿童维生素", "Oral rehydration salts": "口服补液盐", "Baby thermometer": "婴儿体温计",
    "Infant formula consult": "婴儿配方奶咨询", "Children's ibuprofen": "儿童布洛芬", "Well-child visit": "儿童保健随访",
    "Nappy rash cream": "护臀霜", "Children's allergy syrup": "儿童抗过敏糖浆", "Developmental screening": "发育筛查",
    "Sleep clinic visit": "睡眠门诊", "Melatonin tablets": "褪黑素片", "Stress management class": "压力管理课程",
    "Mindfulness app subscription": "正念App订阅", "Meditation course": "冥想课程", "Yoga class": "瑜伽课",
    "Massage session": "按摩疗程", "Nutrition consultation": "营养咨询", "Fitness assessment": "体能评估",
    "Magnesium supplements": "镁补充剂", "Weight management programme": "体重管理计划",
    "Buprenorphine/naloxone 8 mg/2 mg film": "丁丙诺啡/纳洛酮膜 8 mg/2 mg",
    "Knee brace": "护膝", "Physiotherapy session": "物理治疗", "Orthopaedic consultation": "骨科门诊",
    "Glucosamine tablets": "氨基葡萄糖片", "Diclofenac gel": "双氯芬酸凝胶", "Walking stick": "手杖",
    "Back support belt": "护腰带", "Joint X-ray": "关节X光", "Orthotic insoles": "矫形鞋垫",
    "Hydrotherapy session": "水疗", "Hyaluronic acid injection": "玻璃酸钠注射", "Compression stockings": "弹力袜",
}
