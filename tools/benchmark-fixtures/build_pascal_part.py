"""Builds tests/fixtures/benchmarks/pascal-part: a miniature PASCAL-Part download in its published layout.

    Annotations_Part/<imgid>.mat          MATLAB v5 MAT-files, one struct `anno` per image:
        anno.imname                        char, the image id
        anno.objects(i).class              char, VOC class name
        anno.objects(i).class_ind          double, VOC class index (1 = aeroplane … 20 = tvmonitor)
        anno.objects(i).mask               logical H×W silhouette
        anno.objects(i).parts(j).part_name char (the short names of part2ind.m: head, lhand, fwheel …)
        anno.objects(i).parts(j).mask      logical H×W
    VOCdevkit/VOC2010/JPEGImages/<imgid>.jpg
    VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt

The layout is the one the dataset's own devkit (mat2map.m in trainval.tar.gz) and the Python readers
built on scipy.io.loadmat index: loadmat(f)['anno'][0, 0]['objects'][0, i]['parts'][0, j]['part_name'][0].
An object without parts carries a 1×0 struct (one object here carries MATLAB's `[]` instead, which
readers also meet). Two files are zlib-compressed (MATLAB's -v7 default), two are not.

expected.json is the truth the import test compares against: per image its size and, per object and
part, the row-major indices of its pixels, computed here with numpy from the same arrays saved.
Run: python3 tools/benchmark-fixtures/build_pascal_part.py
"""
import json
import os
import shutil

import numpy as np
from PIL import Image
from scipy.io import savemat

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'benchmarks', 'pascal-part')
VOC = {'aeroplane': 1, 'bicycle': 2, 'bird': 3, 'boat': 4, 'bottle': 5, 'bus': 6, 'car': 7, 'cat': 8, 'chair': 9, 'cow': 10,
       'diningtable': 11, 'dog': 12, 'horse': 13, 'motorbike': 14, 'person': 15, 'pottedplant': 16, 'sheep': 17, 'sofa': 18,
       'train': 19, 'tvmonitor': 20}


def ellipse(h, w, cy, cx, ry, rx):
    y, x = np.mgrid[0:h, 0:w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


# (image id, height, width, split, compressed, objects); an object is (class, mask, [(part name, mask)]),
# parts as sub-regions of the object mask, as mat2map.m asserts.
def scenes():
    out = []
    h, w = 30, 40
    person = ellipse(h, w, 15, 10, 13, 7)
    dog = ellipse(h, w, 20, 30, 8, 9) & ~person
    out.append(('2008_000001', h, w, 'train', True, [
        ('person', person, [('head', person & ellipse(h, w, 5, 10, 4, 4)), ('torso', person & rect(h, w, 9, 20, 4, 17)),
                            ('lhand', person & rect(h, w, 18, 22, 3, 8))]),
        ('dog', dog, [('head', dog & ellipse(h, w, 16, 36, 4, 4)), ('tail', dog & rect(h, w, 19, 23, 21, 24))]),
    ]))
    h, w = 20, 24
    bottle = rect(h, w, 2, 18, 2, 7)
    car = ellipse(h, w, 12, 16, 6, 7)
    out.append(('2008_000002', h, w, 'val', False, [
        ('bottle', bottle, []),
        ('car', car, [('fwheel', car & ellipse(h, w, 16, 12, 2, 2)), ('bwheel', car & ellipse(h, w, 16, 20, 2, 2)),
                      ('window_1', car & rect(h, w, 8, 11, 13, 19))]),
    ]))
    h, w = 32, 32
    cat_a = ellipse(h, w, 16, 12, 10, 10)
    # Overlapping silhouettes: the importer must keep both exactly (it packs them in separate layers).
    cat_b = ellipse(h, w, 16, 20, 10, 9)
    out.append(('2009_000003', h, w, 'val', True, [
        ('cat', cat_a, [('head', cat_a & ellipse(h, w, 8, 12, 4, 5)), ('tail', cat_a & rect(h, w, 20, 24, 2, 6))]),
        ('cat', cat_b, [('head', cat_b & ellipse(h, w, 8, 21, 4, 5))]),
        ('person', rect(h, w, 28, 32, 0, 32), None),
    ]))
    h, w = 16, 20
    plane = ellipse(h, w, 8, 10, 5, 9)
    out.append(('2010_000004', h, w, 'train', False, [
        ('aeroplane', plane, [('body', plane & rect(h, w, 5, 11, 3, 17)), ('engine_1', plane & rect(h, w, 9, 11, 5, 8))]),
    ]))
    return out


def struct_array(records, fields):
    arr = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for i, rec in enumerate(records):
        for f in fields:
            arr[0, i][f] = rec[f]
    return arr


def main():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    ann_dir = os.path.join(ROOT, 'Annotations_Part')
    voc = os.path.join(ROOT, 'VOCdevkit', 'VOC2010')
    img_dir = os.path.join(voc, 'JPEGImages')
    sets_dir = os.path.join(voc, 'ImageSets', 'Main')
    for d in (ann_dir, img_dir, sets_dir):
        os.makedirs(d)
    rng = np.random.default_rng(2010)
    expected = []
    splits = {'train': [], 'val': []}
    for imgid, h, w, split, compressed, objects in scenes():
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(img_dir, imgid + '.jpg'), quality=90)
        splits[split].append(imgid)
        records = []
        truth = []
        for cls, mask, parts in objects:
            part_recs = [{'part_name': n, 'mask': m} for n, m in (parts or [])]
            # None → MATLAB's empty matrix `[]`, else a (possibly 1×0) struct array.
            parts_value = np.zeros((0, 0)) if parts is None else struct_array(part_recs, ['part_name', 'mask'])
            records.append({'class': cls, 'class_ind': float(VOC[cls]), 'mask': mask, 'parts': parts_value})
            truth.append({'class': cls, 'class_ind': VOC[cls], 'pixels': np.flatnonzero(mask).tolist(),
                          'parts': [{'part_name': n, 'pixels': np.flatnonzero(m).tolist()} for n, m in (parts or [])]})
        anno = np.zeros((1, 1), dtype=[('imname', object), ('objects', object)])
        anno[0, 0]['imname'] = imgid
        anno[0, 0]['objects'] = struct_array(records, ['class', 'class_ind', 'mask', 'parts'])
        savemat(os.path.join(ann_dir, imgid + '.mat'), {'anno': anno}, do_compression=compressed)
        expected.append({'id': imgid, 'width': w, 'height': h, 'split': split, 'objects': truth})
    for split, ids in splits.items():
        with open(os.path.join(sets_dir, split + '.txt'), 'w') as f:
            f.write(''.join(i + '\n' for i in ids))
    with open(os.path.join(ROOT, 'expected.json'), 'w') as f:
        json.dump({'images': expected}, f, separators=(',', ':'))


if __name__ == '__main__':
    main()
