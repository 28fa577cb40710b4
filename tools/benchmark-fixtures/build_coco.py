"""Builds tests/fixtures/benchmarks/coco: a miniature COCO 2017 download in its published layout.

    annotations/instances_val2017.json          images, annotations (polygons, RLE, crowd RLE, boxes), categories
    annotations/person_keypoints_val2017.json   person annotations with all 17 keypoints + the category's skeleton
    val2017/<12-digit id>.jpg

Field names and shapes follow the COCO data format (cocodataset.org/#format-data): bbox [x, y, w, h];
segmentation as polygons [[x1, y1, x2, y2, ...], ...], RLE {size: [h, w], counts: str} (compressed, as
pycocotools writes) or {counts: [int, ...]} (uncompressed, as iscrowd annotations ship); keypoints
[x1, y1, v1, ...] with v = 0 (not labelled, x = y = 0), 1 (labelled, hidden), 2 (visible); the person
category's keypoint names and skeleton are COCO's.

expected.json is the truth the import test compares against, computed here by pycocotools
(COCO.annToMask for every mask, i.e. frPyObjects + merge + decode) — an implementation independent of
Loupe's. Run: pip install pycocotools; python3 tools/benchmark-fixtures/build_coco.py
"""
import json
import os
import shutil

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'benchmarks', 'coco')
KEYPOINTS = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder', 'left_elbow',
             'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
             'right_ankle']
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11],
            [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
IMAGES = [(139, 48, 40), (285, 40, 32), (632, 32, 32), (724, 24, 20)]  # (id, width, height)


def file_name(image_id):
    return '%012d.jpg' % image_id


def poly_box(polys):
    xs = [v for p in polys for v in p[0::2]]
    ys = [v for p in polys for v in p[1::2]]
    return [round(min(xs), 2), round(min(ys), 2), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def rle_of(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def instances():
    person = [[6.3, 4.1, 17.8, 3.2, 21.55, 30.7, 12.0, 37.9, 3.2, 28.4]]
    dog = [[27.5, 22.2, 45.1, 20.8, 44.0, 35.6, 30.25, 36.1], [40.2, 15.0, 46.7, 15.9, 43.3, 21.4]]
    crowd = np.zeros((40, 48), dtype=np.uint8)
    crowd[2:14, 10:30] = 1  # overlaps the person polygon: the importer must keep both exactly
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_counts = mask_utils.decode(crowd_rle)  # round-trip check of the uncompressed form below
    assert (crowd_counts == crowd).all()
    # Uncompressed counts (column-major runs, zeros first), as COCO ships crowd regions.
    flat = crowd.flatten(order='F')
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            n, cur = 0, v
        n += 1
    runs.append(n)
    car = np.zeros((32, 40), dtype=np.uint8)
    car[12:25, 5:31] = 1
    car[9:12, 10:22] = 1
    dog2 = [[2.5, 3.5, 14.5, 2.5, 9.0, 11.75]]
    anns = [
        {'id': 1001, 'image_id': 139, 'category_id': 1, 'segmentation': person, 'area': 0, 'bbox': poly_box(person), 'iscrowd': 0},
        {'id': 1002, 'image_id': 139, 'category_id': 18, 'segmentation': dog, 'area': 0, 'bbox': poly_box(dog), 'iscrowd': 0},
        {'id': 1003, 'image_id': 139, 'category_id': 1, 'segmentation': {'size': [40, 48], 'counts': runs}, 'area': 0,
         'bbox': [10.0, 2.0, 20.0, 12.0], 'iscrowd': 1},
        {'id': 1004, 'image_id': 285, 'category_id': 3, 'segmentation': rle_of(car), 'area': 0, 'bbox': [5.0, 9.0, 26.0, 16.0], 'iscrowd': 0},
        {'id': 1005, 'image_id': 285, 'category_id': 18, 'segmentation': dog2, 'area': 0, 'bbox': poly_box(dog2), 'iscrowd': 0},
        # No segmentation: the box is all there is.
        {'id': 1006, 'image_id': 632, 'category_id': 3, 'segmentation': [], 'area': 99.0, 'bbox': [3.5, 4.25, 11.0, 9.0], 'iscrowd': 0},
    ]
    cats = [{'supercategory': 'person', 'id': 1, 'name': 'person'}, {'supercategory': 'vehicle', 'id': 3, 'name': 'car'},
            {'supercategory': 'animal', 'id': 18, 'name': 'dog'}]
    return anns, cats


def keypoint_anns():
    person = [[6.3, 4.1, 17.8, 3.2, 21.55, 30.7, 12.0, 37.9, 3.2, 28.4]]
    kp1 = [0] * 51
    visible = {0: (12, 6, 2), 1: (13, 5, 2), 2: (11, 5, 1), 5: (16, 12, 2), 6: (8, 12, 2), 11: (15, 25, 1), 16: (9, 37, 2)}
    for k, (x, y, v) in visible.items():
        kp1[3 * k:3 * k + 3] = [x, y, v]
    person2 = [[20.0, 6.0, 30.0, 6.0, 30.0, 28.0, 20.0, 28.0]]
    kp2 = [0] * 51  # a person with no keypoints labelled (num_keypoints 0), as many COCO persons are
    anns = [
        {'id': 2001, 'image_id': 139, 'category_id': 1, 'segmentation': person, 'num_keypoints': len(visible), 'area': 0,
         'keypoints': kp1, 'bbox': poly_box(person), 'iscrowd': 0},
        {'id': 2002, 'image_id': 285, 'category_id': 1, 'segmentation': person2, 'num_keypoints': 0, 'area': 0,
         'keypoints': kp2, 'bbox': poly_box(person2), 'iscrowd': 0},
    ]
    cats = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': KEYPOINTS, 'skeleton': SKELETON}]
    return anns, cats


def write(path, anns, cats):
    images = [{'license': 1, 'file_name': file_name(i), 'coco_url': '', 'height': h, 'width': w, 'date_captured': '',
               'flickr_url': '', 'id': i} for i, w, h in IMAGES]
    data = {'info': {'description': 'Loupe COCO fixture', 'version': '1.0', 'year': 2017}, 'licenses': [{'id': 1, 'name': 'fixture'}],
            'images': images, 'annotations': anns, 'categories': cats}
    with open(path, 'w') as f:
        json.dump(data, f)
    # The truth, from pycocotools over the file just written.
    coco = COCO(path)
    truth = []
    for a in anns:
        img = coco.imgs[a['image_id']]
        t = {'id': a['id'], 'image_id': a['image_id'], 'category': coco.cats[a['category_id']]['name'], 'bbox': a['bbox']}
        seg = a['segmentation']
        if seg:
            m = coco.annToMask(a)
            assert m.shape == (img['height'], img['width'])
            t['pixels'] = np.flatnonzero(m).tolist()
            a['area'] = float(m.sum())
        if 'keypoints' in a:
            t['keypoints'] = a['keypoints']
        truth.append(t)
    with open(path, 'w') as f:  # again, now with each area as pycocotools measures it
        json.dump(data, f)
    return truth


def main():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(os.path.join(ROOT, 'annotations'))
    os.makedirs(os.path.join(ROOT, 'val2017'))
    rng = np.random.default_rng(2017)
    for i, w, h in IMAGES:
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(os.path.join(ROOT, 'val2017', file_name(i)), quality=90)
    expected = {
        'images': [{'id': i, 'file_name': file_name(i), 'width': w, 'height': h} for i, w, h in IMAGES],
        'instances': write(os.path.join(ROOT, 'annotations', 'instances_val2017.json'), *instances()),
        'person_keypoints': write(os.path.join(ROOT, 'annotations', 'person_keypoints_val2017.json'), *keypoint_anns()),
        'keypoint_names': KEYPOINTS,
        'skeleton': SKELETON,
    }
    with open(os.path.join(ROOT, 'expected.json'), 'w') as f:
        json.dump(expected, f, separators=(',', ':'))


if __name__ == '__main__':
    main()
