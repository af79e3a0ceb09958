package hissim

// The analytes lab results report. Numeric lines are
//
//	code|name|unit|low|high
//
// (the reference range low-high; the number of decimals of the bounds is the
// number of decimals a value gets). Qualitative lines are
//
//	code|name|=normal value|abnormal value
//
// and lines whose third column starts with "?" list possible values none of
// which is abnormal (blood group).
const analyteTable = `
WBC|白细胞计数|10^9/L|3.50|9.50
NEUT%|中性粒细胞百分比|%|40.0|75.0
LYMPH%|淋巴细胞百分比|%|20.0|50.0
MONO%|单核细胞百分比|%|3.0|10.0
EO%|嗜酸性粒细胞百分比|%|0.4|8.0
NEUT#|中性粒细胞绝对值|10^9/L|1.80|6.30
LYMPH#|淋巴细胞绝对值|10^9/L|1.10|3.20
RBC|红细胞计数|10^12/L|3.80|5.80
HGB|血红蛋白|g/L|115|175
HCT|红细胞压积|%|35.0|50.0
MCV|平均红细胞体积|fL|82.0|100.0
MCH|平均红细胞血红蛋白含量|pg|27.0|34.0
MCHC|平均红细胞血红蛋白浓度|g/L|316|354
RDW-CV|红细胞分布宽度|%|11.5|14.5
PLT|血小板计数|10^9/L|125|350
MPV|平均血小板体积|fL|7.4|12.5
RET%|网织红细胞百分比|%|0.50|1.50
SG|尿比重||1.003|1.030
UPH|尿酸碱度||5.0|8.0
U-PRO|尿蛋白|=阴性|阳性(+)
U-GLU|尿葡萄糖|=阴性|阳性(++)
U-KET|尿酮体|=阴性|弱阳性(±)
U-BLD|尿隐血|=阴性|阳性(+)
U-LEU|尿白细胞酯酶|=阴性|阳性(+)
U-NIT|尿亚硝酸盐|=阴性|阳性
U-BIL|尿胆红素|=阴性|阳性(+)
URO|尿胆原|=正常|阳性(+)
U-RBC|尿红细胞(镜检)|/HPF|0|3
U-WBC|尿白细胞(镜检)|/HPF|0|5
U-EC|尿上皮细胞|/HPF|0|5
U-CAST|尿管型|=未见|透明管型0-1/LPF
F-COL|粪便颜色|=黄色|黑色
F-CHAR|粪便性状|=软便|稀便
F-WBC|粪便白细胞|=未见|2-4/HPF
FOB|粪便隐血|=阴性|阳性
ALT|丙氨酸氨基转移酶|U/L|9|50
AST|天门冬氨酸氨基转移酶|U/L|15|40
GGT|γ-谷氨酰转移酶|U/L|10|60
ALP|碱性磷酸酶|U/L|45|125
TBIL|总胆红素|μmol/L|3.4|20.5
DBIL|直接胆红素|μmol/L|0.0|6.8
IBIL|间接胆红素|μmol/L|1.7|13.7
TP|总蛋白|g/L|65.0|85.0
ALB|白蛋白|g/L|40.0|55.0
GLB|球蛋白|g/L|20.0|40.0
A/G|白球比||1.20|2.40
TBA|总胆汁酸|μmol/L|0.0|10.0
PA|前白蛋白|mg/L|200|400
NH3|血氨|μmol/L|9|33
UREA|尿素|mmol/L|3.10|8.00
CREA|肌酐|μmol/L|57|111
UA|尿酸|μmol/L|208|428
CYSC|胱抑素C|mg/L|0.51|1.09
B2MG|β2微球蛋白|mg/L|1.00|3.00
TC|总胆固醇|mmol/L|2.80|5.20
TG|甘油三酯|mmol/L|0.45|1.70
HDL-C|高密度脂蛋白胆固醇|mmol/L|1.04|2.00
LDL-C|低密度脂蛋白胆固醇|mmol/L|1.50|3.40
APOA1|载脂蛋白A1|g/L|1.00|1.60
APOB|载脂蛋白B|g/L|0.60|1.10
LPA|脂蛋白(a)|mg/L|0|300
GLU|空腹血糖|mmol/L|3.90|6.10
GLU2H|餐后2小时血糖|mmol/L|3.90|7.80
OGTT0|葡萄糖(0小时)|mmol/L|3.90|6.10
OGTT1|葡萄糖(1小时)|mmol/L|6.70|9.40
OGTT2|葡萄糖(2小时)|mmol/L|3.90|7.80
HBA1C|糖化血红蛋白|%|4.0|6.0
INS0|胰岛素(0小时)|μU/mL|2.6|24.9
INS1|胰岛素(1小时)|μU/mL|20.0|120.0
INS2|胰岛素(2小时)|μU/mL|15.0|90.0
CP|C肽|ng/mL|1.10|4.40
FT3|游离三碘甲状腺原氨酸|pmol/L|3.10|6.80
FT4|游离甲状腺素|pmol/L|12.00|22.00
TSH|促甲状腺激素|mIU/L|0.270|4.200
T3|三碘甲状腺原氨酸|nmol/L|1.30|3.10
T4|甲状腺素|nmol/L|66|181
TPOAB|抗甲状腺过氧化物酶抗体|IU/mL|0.0|34.0
TGAB|抗甲状腺球蛋白抗体|IU/mL|0.0|115.0
K|钾|mmol/L|3.50|5.30
NA|钠|mmol/L|137.0|147.0
CL|氯|mmol/L|99.0|110.0
CA|钙|mmol/L|2.11|2.52
P|磷|mmol/L|0.85|1.51
MG|镁|mmol/L|0.75|1.02
CO2|二氧化碳结合力|mmol/L|22.0|29.0
FE|血清铁|μmol/L|10.6|36.7
PT|凝血酶原时间|s|9.4|12.5
INR|国际标准化比值||0.80|1.20
APTT|活化部分凝血活酶时间|s|25.1|36.5
TT|凝血酶时间|s|10.3|16.6
FIB|纤维蛋白原|g/L|2.00|4.00
DD|D-二聚体|mg/L FEU|0.00|0.55
CK|肌酸激酶|U/L|50|310
CKMB|肌酸激酶同工酶|U/L|0.0|24.0
LDH|乳酸脱氢酶|U/L|120|250
CTNI|肌钙蛋白I|ng/mL|0.000|0.040
NTPROBNP|N端脑钠肽前体|pg/mL|0|125
MYO|肌红蛋白|ng/mL|0.0|70.0
HCY|同型半胱氨酸|μmol/L|0.0|15.0
CRP|C反应蛋白|mg/L|0.0|10.0
HSCRP|超敏C反应蛋白|mg/L|0.00|3.00
PCT|降钙素原|ng/mL|0.000|0.050
ESR|红细胞沉降率|mm/h|0|20
SAA|血清淀粉样蛋白A|mg/L|0.0|10.0
IL6|白细胞介素6|pg/mL|0.0|7.0
AFP|甲胎蛋白|ng/mL|0.00|7.00
CEA|癌胚抗原|ng/mL|0.00|5.00
CA125|糖类抗原125|U/mL|0.0|35.0
CA199|糖类抗原19-9|U/mL|0.0|37.0
CA153|糖类抗原15-3|U/mL|0.0|25.0
TPSA|总前列腺特异性抗原|ng/mL|0.00|4.00
FPSA|游离前列腺特异性抗原|ng/mL|0.00|0.93
CYFRA|细胞角蛋白19片段|ng/mL|0.00|3.30
NSE|神经元特异性烯醇化酶|ng/mL|0.0|16.3
SCC|鳞状细胞癌相关抗原|ng/mL|0.00|1.50
HBSAG|乙肝表面抗原|=阴性|阳性
HBSAB|乙肝表面抗体|=阳性|阴性
HBEAG|乙肝e抗原|=阴性|阳性
HBEAB|乙肝e抗体|=阴性|阳性
HBCAB|乙肝核心抗体|=阴性|阳性
HCVAB|丙型肝炎病毒抗体|=阴性|阳性
HIVAB|人类免疫缺陷病毒抗体|=阴性|待复查
TPAB|梅毒螺旋体抗体|=阴性|阳性
FER|铁蛋白|ng/mL|30.0|400.0
VB12|维生素B12|pg/mL|197|771
FOL|叶酸|ng/mL|3.10|19.90
VD|25-羟维生素D|ng/mL|30.0|100.0
AMY|淀粉酶|U/L|35|135
LPS|脂肪酶|U/L|13|60
FSH|促卵泡生成素|mIU/mL|1.50|12.40
LH|促黄体生成素|mIU/mL|1.70|8.60
E2|雌二醇|pg/mL|25.8|60.7
PRL|催乳素|ng/mL|4.00|15.20
PROG|孕酮|ng/mL|0.20|1.40
TESTO|睾酮|ng/mL|2.49|8.36
COR|皮质醇(8时)|nmol/L|133|537
ACTH|促肾上腺皮质激素|pg/mL|7.2|63.3
BG-PH|酸碱度(pH)||7.35|7.45
PCO2|二氧化碳分压|mmHg|35.0|45.0
PO2|氧分压|mmHg|80.0|100.0
HCO3|实际碳酸氢根|mmol/L|22.0|27.0
BE|剩余碱|mmol/L|-3.0|3.0
SO2|血氧饱和度|%|95.0|100.0
LAC|乳酸|mmol/L|0.50|2.20
UMA|尿微量白蛋白|mg/L|0.0|30.0
UACR|尿白蛋白/肌酐比值|mg/g|0.0|30.0
UTP24|24小时尿蛋白定量|g/24h|0.00|0.15
UHCG|尿人绒毛膜促性腺激素|=阴性|阳性
HCG|人绒毛膜促性腺激素|mIU/mL|0.0|5.0
UBT13|碳13呼气试验DOB值|‰|0.0|4.0
UBT14|碳14呼气试验|dpm/mmol|0|100
FLUA|甲型流感病毒抗原|=阴性|阳性
FLUB|乙型流感病毒抗原|=阴性|阳性
COV|新型冠状病毒核酸|=阴性|阳性
MPIGM|肺炎支原体抗体IgM|=阴性|阳性
RSV|呼吸道合胞病毒抗原|=阴性|阳性
CULT-SP|痰培养|=正常菌群生长|肺炎克雷伯菌 中量生长
CULT-U|尿培养|=无细菌生长|大肠埃希菌 菌落计数>10^5CFU/mL
CULT-B|血培养(需氧+厌氧)|=培养5天无细菌生长|表皮葡萄球菌生长（污染可能）
CULT-TH|咽拭子培养|=正常菌群生长|A群β溶血性链球菌生长
RF|类风湿因子|IU/mL|0.0|20.0
ASO|抗链球菌溶血素O|IU/mL|0|200
ANA|抗核抗体|=阴性|阳性(1:320 颗粒型)
CCP|抗环瓜氨酸肽抗体|U/mL|0.0|17.0
ABO|ABO血型|?A型,B型,O型,AB型
RH|Rh(D)血型|?阳性
IGG|免疫球蛋白G|g/L|7.00|16.00
IGA|免疫球蛋白A|g/L|0.70|4.00
IGM|免疫球蛋白M|g/L|0.40|2.30
C3|补体C3|g/L|0.90|1.80
C4|补体C4|g/L|0.10|0.40
HA|透明质酸|ng/mL|0.0|120.0
LN|层粘连蛋白|ng/mL|0.0|130.0
PCIII|Ⅲ型前胶原N端肽|ng/mL|0.0|15.0
CIV|Ⅳ型胶原|ng/mL|0.0|95.0
FCAL|粪便钙卫蛋白|μg/g|0|50
DIG|地高辛血药浓度|ng/mL|0.80|2.00
VPA|丙戊酸血药浓度|μg/mL|50.0|100.0
EBVCA|EB病毒衣壳抗原IgA抗体|=阴性|阳性
TSPOT|结核感染T细胞检测|=阴性|阳性
PGI|胃蛋白酶原I|ng/mL|70.0|240.0
PGII|胃蛋白酶原II|ng/mL|0.0|15.0
G17|胃泌素17|pmol/L|1.0|15.0
`

// The lab catalogue: name|specimen|price (yuan)|analyte codes.
const labTable = `
血常规(五分类)|静脉血|20.00|WBC NEUT% LYMPH% MONO% EO% NEUT# LYMPH# RBC HGB HCT MCV MCH MCHC RDW-CV PLT MPV
尿常规|尿液|15.00|SG UPH U-PRO U-GLU U-KET U-BLD U-LEU U-NIT U-BIL URO U-RBC U-WBC
粪便常规+隐血|粪便|12.00|F-COL F-CHAR F-WBC FOB
肝功能|静脉血|68.00|ALT AST GGT ALP TBIL DBIL IBIL TP ALB GLB A/G
肾功能|静脉血|36.00|UREA CREA UA CYSC
血脂四项|静脉血|40.00|TC TG HDL-C LDL-C
血脂全套|静脉血|78.00|TC TG HDL-C LDL-C APOA1 APOB LPA
空腹血糖|静脉血|5.00|GLU
餐后2小时血糖|静脉血|5.00|GLU2H
糖化血红蛋白|静脉血|60.00|HBA1C
口服葡萄糖耐量试验|静脉血|35.00|OGTT0 OGTT1 OGTT2
胰岛素释放试验|静脉血|120.00|INS0 INS1 INS2
C肽测定|静脉血|50.00|CP
甲状腺功能三项|静脉血|90.00|FT3 FT4 TSH
甲状腺功能五项|静脉血|140.00|FT3 FT4 TSH T3 T4
甲状腺抗体两项|静脉血|120.00|TPOAB TGAB
电解质四项|静脉血|22.00|K NA CL CA
钙磷镁|静脉血|18.00|CA P MG
二氧化碳结合力|静脉血|6.00|CO2
凝血四项|静脉血|60.00|PT INR APTT TT FIB
D-二聚体|静脉血|70.00|DD
心肌酶谱|静脉血|62.00|CK CKMB LDH
肌钙蛋白I|静脉血|80.00|CTNI
N端脑钠肽前体|静脉血|180.00|NTPROBNP
肌红蛋白|静脉血|45.00|MYO
同型半胱氨酸|静脉血|40.00|HCY
C反应蛋白|静脉血|30.00|CRP
超敏C反应蛋白|静脉血|40.00|HSCRP
降钙素原|静脉血|150.00|PCT
红细胞沉降率|静脉血|8.00|ESR
血清淀粉样蛋白A|静脉血|50.00|SAA
白细胞介素6|静脉血|120.00|IL6
甲胎蛋白|静脉血|40.00|AFP
癌胚抗原|静脉血|40.00|CEA
糖类抗原125|静脉血|80.00|CA125
糖类抗原19-9|静脉血|80.00|CA199
糖类抗原15-3|静脉血|80.00|CA153
前列腺特异性抗原|静脉血|120.00|TPSA FPSA
肺癌标志物三项|静脉血|180.00|CYFRA NSE SCC
乙肝两对半|静脉血|75.00|HBSAG HBSAB HBEAG HBEAB HBCAB
丙型肝炎病毒抗体|静脉血|40.00|HCVAB
HIV抗体|静脉血|40.00|HIVAB
梅毒螺旋体抗体|静脉血|30.00|TPAB
术前四项|静脉血|180.00|HBSAG HCVAB HIVAB TPAB
铁蛋白|静脉血|60.00|FER
血清铁|静脉血|10.00|FE
维生素B12|静脉血|80.00|VB12
叶酸|静脉血|80.00|FOL
25-羟维生素D|静脉血|120.00|VD
贫血三项|静脉血|220.00|FER VB12 FOL
血淀粉酶|静脉血|15.00|AMY
脂肪酶|静脉血|30.00|LPS
性激素六项|静脉血|280.00|FSH LH E2 PRL PROG TESTO
皮质醇(8时)|静脉血|60.00|COR
促肾上腺皮质激素|静脉血|80.00|ACTH
动脉血气分析|动脉血|80.00|BG-PH PCO2 PO2 HCO3 BE SO2 LAC
血乳酸|静脉血|25.00|LAC
尿微量白蛋白|尿液|30.00|UMA
尿白蛋白/肌酐比值|尿液|45.00|UACR
24小时尿蛋白定量|24小时尿|20.00|UTP24
尿妊娠试验|尿液|10.00|UHCG
血人绒毛膜促性腺激素定量|静脉血|60.00|HCG
碳13尿素呼气试验|呼气|160.00|UBT13
碳14尿素呼气试验|呼气|100.00|UBT14
甲型/乙型流感病毒抗原|鼻咽拭子|80.00|FLUA FLUB
新型冠状病毒核酸检测|咽拭子|40.00|COV
肺炎支原体抗体IgM|静脉血|50.00|MPIGM
呼吸道合胞病毒抗原|鼻咽拭子|60.00|RSV
痰培养+药敏|痰液|120.00|CULT-SP
尿培养+药敏|尿液|120.00|CULT-U
血培养+药敏|静脉血|180.00|CULT-B
咽拭子培养|咽拭子|80.00|CULT-TH
类风湿因子|静脉血|25.00|RF
抗链球菌溶血素O|静脉血|25.00|ASO
抗核抗体|静脉血|60.00|ANA
抗环瓜氨酸肽抗体|静脉血|120.00|CCP
ABO血型+Rh血型|静脉血|30.00|ABO RH
网织红细胞计数|静脉血|15.00|RET%
总胆汁酸|静脉血|20.00|TBA
前白蛋白|静脉血|20.00|PA
血氨|静脉血|30.00|NH3
β2微球蛋白|静脉血|30.00|B2MG
免疫球蛋白三项|静脉血|90.00|IGG IGA IGM
补体C3+C4|静脉血|60.00|C3 C4
肝纤维化四项|静脉血|160.00|HA LN PCIII CIV
尿沉渣定量|尿液|20.00|U-RBC U-WBC U-EC U-CAST
粪便钙卫蛋白|粪便|150.00|FCAL
地高辛血药浓度|静脉血|120.00|DIG
丙戊酸血药浓度|静脉血|120.00|VPA
血清镁|静脉血|8.00|MG
血清钾|静脉血|6.00|K
血清钠|静脉血|6.00|NA
血尿酸|静脉血|8.00|UA
血肌酐|静脉血|8.00|CREA
总胆固醇|静脉血|6.00|TC
甘油三酯|静脉血|6.00|TG
丙氨酸氨基转移酶|静脉血|6.00|ALT
EB病毒抗体|静脉血|150.00|EBVCA
结核感染T细胞检测|静脉血|380.00|TSPOT
胃功能三项|静脉血|160.00|PGI PGII G17
`
