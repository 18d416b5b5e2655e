# Plain-DETR with BoxRPB (detection/mmdet_plugin.py) trained by mmdet's Runner on the project's synthetic COCO-format
# shapes set, CPU scale: a small BiFormer (stride-16 stage) + the tiny Plain-DETR of `vid2robot-train task=detection`
# (d=64, 4 heads, 2 layers, 50 + 100 queries), 128 px images, evaluated with CocoMetric (COCOeval bbox).
#
#   python -m detection.coco.synthetic --out data/shapes --train 800 --val 100 --size 160 --seed 0
#   PLAIN_DETR_DATA=data/shapes python -c "from mmengine.config import Config; from mmengine.runner import Runner; \
#       Runner.from_cfg(Config.fromfile('detection/configs/plain_detr_boxrpb_synthetic.py')).train()"
#
# Any COCO-format folder with train/{images,annotations.json} and val/{images,annotations.json} works: set
# PLAIN_DETR_DATA, `classes` and detr.num_classes. The model takes RGB in [0, 1] (mean 0, std 255 below) and
# normalises itself.

custom_imports = dict(imports=["detection.mmdet_plugin"], allow_failed_imports=False)
default_scope = "mmdet"

data_root = "{{$PLAIN_DETR_DATA:data/shapes}}/"
classes = ("circle", "rectangle", "triangle", "cross", "ring")  # detection.coco.synthetic.CLASSES
# Shorter side at evaluation; training draws 0.75x-1x of it (150 training queries need >= 96 px).
image_size = 128

model = dict(
    type="PlainDETRDetector",
    data_preprocessor=dict(
        type="DetDataPreprocessor",
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        bgr_to_rgb=True,
        pad_size_divisor=1,
    ),
    backbone=dict(
        type="BiFormer",
        arch=None,  # a small BiFormer for CPU; arch="tiny" (+ checkpoint_path) for BiFormer-T
        depth=(1, 1, 2, 1),
        embed_dim=(32, 64, 128, 256),
        head_dim=32,
        topks=(1, 4, 16, -2),
        n_win=7,
        out_indices=(2,),  # the stride-16 stage: Plain-DETR is single-scale
    ),
    detr=dict(
        num_classes=len(classes),
        d_model=64,
        num_heads=4,
        ffn_dim=256,
        num_layers=2,
        rpe_type="linear",  # BoxRPB: linear | abs_log8 | none
        rpe_hidden_dim=128,
        num_queries_one2one=50,
        num_queries_one2many=100,
        k_one2many=6,
    ),
    test_cfg=dict(max_per_img=100),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="RandomFlip", prob=0.5),
    dict(
        type="RandomChoiceResize",
        scales=[(s, s * 5 // 3) for s in range(image_size, image_size * 3 // 4 - 1, -8)],
        keep_ratio=True,
    ),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(image_size, image_size * 5 // 3), keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]


def coco_split(split, pipeline, **options):  # the loader of one split folder (train/, val/)
    dataset = dict(
        type="CocoDataset",
        data_root=data_root,
        ann_file=f"{split}/annotations.json",
        data_prefix=dict(img=f"{split}/images/"),
        metainfo=dict(classes=classes),
        pipeline=pipeline,
        **options,
    )
    return dict(batch_size=8, num_workers=0, dataset=dataset)


train_dataloader = dict(
    coco_split("train", train_pipeline, filter_cfg=dict(filter_empty_gt=True)),
    sampler=dict(type="DefaultSampler", shuffle=True),
)
val_dataloader = dict(
    coco_split("val", test_pipeline, test_mode=True),
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
)
del coco_split  # a helper, not a setting
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=data_root + "val/annotations.json", metric="bbox")
test_evaluator = val_evaluator

# AdamW, clip 0.1 (official), warmup then x0.1 for the last tenth, as `vid2robot-train task=detection`.
max_epochs = 12
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=5e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=1.0)}),  # 0.1 for a pretrained backbone
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="MultiStepLR", by_epoch=True, begin=0, end=max_epochs, milestones=[11], gamma=0.1),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=20),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=4, max_keep_ckpts=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="DetVisualizationHook"),
)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="gloo"))
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="DetLocalVisualizer", vis_backends=vis_backends, name="visualizer")
log_processor = dict(type="LogProcessor", window_size=20, by_epoch=True)
log_level = "INFO"
load_from = None
resume = False
work_dir = "outputs/mmdet/plain_detr_boxrpb_synthetic"
